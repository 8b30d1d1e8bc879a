import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';

/** Backend choice is once per process, so each case runs in a child process. */
function pick(env: Record<string, string | undefined>, arg = 'undefined') {
  const code = `import { initTf, tf, tfBackendReason } from './util/tf-backend.ts';
    try { const b = await initTf(${arg}, (m) => console.log(m)); console.log('RESULT', b, tf.getBackend()); console.log('WHY', tfBackendReason()); }
    catch (e) { console.log('ERROR', e.message); }`;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('auto picks the best backend that loads and logs the choice', () => {
  const out = pick({ PAPO_TF_BACKEND: undefined });
  const m = /RESULT (\w+) (\w+)/.exec(out);
  assert.ok(m, out);
  assert.equal(m[1], m[2]);
  assert.ok(['tensorflow', 'wasm'].includes(m[1]), `expected a fast backend, got ${m[1]}`);
  assert.match(out, new RegExp(`TensorFlow.js backend: ${m[1]}`));
});

test('PAPO_TF_BACKEND forces a backend; an unknown name is a clear error', () => {
  assert.match(pick({ PAPO_TF_BACKEND: 'cpu' }), /RESULT cpu cpu/);
  assert.match(pick({ PAPO_TF_BACKEND: 'wasm' }), /RESULT wasm wasm/);
  assert.match(pick({ PAPO_TF_BACKEND: 'webgpu' }), /ERROR Unknown TensorFlow.js backend 'webgpu'/);
  assert.match(pick({}, "'cpu'"), /RESULT cpu cpu/);
});

test('the reason for the backend: the ones skipped and why, in words (tfjs-node-gpu not installed), or that it was asked for', () => {
  const auto = pick({ PAPO_TF_BACKEND: undefined });
  const got = /RESULT (\w+)/.exec(auto)![1];
  if (got === 'wasm')
    assert.match(
      auto,
      /^WHY wasm: tensorflow: tfjs-node-gpu is not installed \(an optional dependency: its install fetches libtensorflow from outside the npm registry\)$/m,
    );
  else assert.match(auto, /^WHY tensorflow: the first choice$/m);
  assert.match(pick({ PAPO_TF_BACKEND: 'cpu' }), /^WHY cpu: asked for \(PAPO_TF_BACKEND or the backend argument\)$/m);
});
