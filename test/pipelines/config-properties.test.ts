/**
 * Property-based tests (fast-check) of what a run config and a run directory from elsewhere may hold: for
 * arbitrary values put at arbitrary places of a valid config (or in place of it), of a saved `config.json`
 * and of a checkpoint's state, reading them either succeeds or fails with an Error that names where (the key,
 * the file, the checkpoint), never a TypeError from deep inside, and never pollutes Object.prototype.
 *
 * The seed is fixed so CI is deterministic; PAPO_FC_SEED=<n> explores other inputs.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import { flattenConfig, readRunConfig, trainConfig } from '../../pipelines/train-config.ts';
import { parseTrainState } from '../../pipelines/train-state.ts';
import { runTrain } from '../../pipelines/train.ts';
import { trainInputFromArgs } from '../../cli/train-args.ts';
import { parseOverrideValue } from '../../cli/config-file.ts';
import { applyOverrides } from '../../util/overrides.ts';
import { tinyPolicyInTmp, tinyRunOverrides } from './tiny-run.ts';

const params = { seed: Number(process.env.PAPO_FC_SEED ?? 20), numRuns: 60 };

let tmp: string;
let run: string;
let savedConfig: Record<string, unknown>;
let savedState: Record<string, unknown>;
before(async () => {
  let weights: string;
  ({ tmp, weights } = await tinyPolicyInTmp('papo-config-prop-'));
  run = path.join(tmp, 'run');
  await runTrain(trainInputFromArgs({}, tinyRunOverrides(weights, run, 1)), { quiet: true });
  savedConfig = JSON.parse(fs.readFileSync(path.join(run, 'config.json'), 'utf8'));
  savedState = JSON.parse(fs.readFileSync(path.join(run, 'checkpoints', 'step_000001', 'zarr.json'), 'utf8')).attributes.state;
});
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const KEYS = () => [...flattenConfig(savedConfig).keys()];
/** A key path: one of the config's own, a prefix of one, or one with a hostile or unknown segment. */
const keyPath = () =>
  fc.oneof(
    fc.constantFrom(...KEYS()),
    fc.constantFrom(...KEYS()).map((k) => k.split('.').slice(0, -1).join('.') || k),
    fc
      .tuple(
        fc.constantFrom('data', 'algorithm', 'worker', 'trainer', 'worker.rollout'),
        fc.constantFrom('__proto__', 'constructor', 'prototype', 'x', '', '0'),
      )
      .map(([a, b]) => `${a}.${b}`),
  );
/** Values of every JSON type, and the odd ones JSON has (deep nesting, huge numbers, long strings). */
const value = () => fc.oneof(fc.jsonValue({ maxDepth: 3 }), fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, '', 'x'.repeat(10_000), [], {}, null));

function setAt(obj: Record<string, unknown>, key: string, v: unknown): Record<string, unknown> {
  const copy = structuredClone(obj);
  const parts = key.split('.');
  let o: Record<string, unknown> = copy;
  for (const p of parts.slice(0, -1)) {
    if (typeof o[p] !== 'object' || o[p] === null || Array.isArray(o[p]))
      Object.defineProperty(o, p, { value: {}, enumerable: true, writable: true, configurable: true });
    o = o[p] as Record<string, unknown>;
  }
  Object.defineProperty(o, parts.at(-1)!, { value: v, enumerable: true, writable: true, configurable: true });
  return copy;
}

/** Fails the property on anything but success or an Error whose message matches `named`. */
function namedOrOk(f: () => unknown, named: RegExp): void {
  try {
    f();
  } catch (err) {
    assert.ok(err instanceof Error && !(err instanceof TypeError) && !(err instanceof RangeError), `not a plain Error: ${String(err)}`);
    assert.match(err.message, named);
  } finally {
    assert.equal(({} as Record<string, unknown>).x, undefined, 'Object.prototype polluted');
    assert.equal(Object.keys(Object.prototype).length, 0, 'Object.prototype polluted');
  }
}

test('a config with any value at any place: valid, or an error naming the run config', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(keyPath(), value()), { minLength: 1, maxLength: 4 }), (edits) => {
      let cfg = savedConfig;
      for (const [k, v] of edits) cfg = setAt(cfg, k, v);
      namedOrOk(() => trainConfig(cfg), /run config/);
    }),
    params,
  );
  for (const whole of [null, 5, 'text', [], [1, 2], true]) namedOrOk(() => trainConfig(whole), /run config/);
});

test('overrides key.path=value with any key and any text: applied and validated, or an error naming the key', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(
          keyPath(),
          fc.oneof(
            fc.string(),
            fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
          ),
        ),
        { maxLength: 4 },
      ),
      (pairs) => {
        namedOrOk(
          () =>
            trainConfig(
              applyOverrides(
                structuredClone(savedConfig),
                pairs.map(([k, v]) => `${k}=${v}`),
                parseOverrideValue,
              ),
            ),
          /run config|override|key|__proto__|constructor|prototype/,
        );
      },
    ),
    params,
  );
});

test("a foreign run's config.json with any value at any place: read, or an error naming the file", () => {
  const file = path.join(run, 'config.json');
  const original = fs.readFileSync(file);
  try {
    fc.assert(
      fc.property(keyPath(), value(), (k, v) => {
        fs.writeFileSync(file, JSON.stringify(setAt(savedConfig, k, v)));
        namedOrOk(() => readRunConfig(run, 'replay', true), /^replay: .*config\.json/);
      }),
      { ...params, numRuns: 50 },
    );
  } finally {
    fs.writeFileSync(file, original);
  }
});

test("a checkpoint's state with any value at any place: parsed, or an error naming the checkpoint", () => {
  const stateKeys = [...flattenConfig(savedState).keys()].filter((k) => !k.startsWith('config.'));
  fc.assert(
    fc.property(
      fc.oneof(fc.constantFrom(...stateKeys), fc.constantFrom('version', 'cursor', 'versions', 'config', 'reference', 'metrics', '__proto__')),
      value(),
      (k, v) => {
        namedOrOk(() => parseTrainState(setAt(savedState, k, v), 'ckpt/step_000001', 1), /^ckpt\/step_000001: /);
      },
    ),
    params,
  );
});
