/**
 * Applies dotted overrides to a nested config document, as verl / EasyR1 users type them on the command
 * line (`worker.rollout.n=4 trainer.max_steps=10`). `papo train` parses values as YAML scalars or flow
 * collections (`true`, `1e-4`, `[a, b]`); a path through a non-mapping is an error naming it.
 *
 * @example
 * applyOverrides({ trainer: { max_steps: 5 } }, ['worker.rollout.n=4'], YAML.parse);
 * // { trainer: { max_steps: 5 }, worker: { rollout: { n: 4 } } }
 */
/** Keys that would reach an object's prototype instead of naming an option: refused, never assigned. */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function applyOverrides(base: Record<string, unknown>, overrides: readonly string[], parseValue: (text: string) => unknown): Record<string, unknown> {
  const out = structuredClone(base);
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0) throw new Error(`override '${o}' must look like key.path=value`);
    const keys = o.slice(0, eq).split('.');
    if (keys.some((k) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(k))) throw new Error(`override '${o}': '${o.slice(0, eq)}' is not a dotted key path`);
    const reserved = keys.find((k) => RESERVED_KEYS.has(k));
    if (reserved) throw new Error(`override '${o.slice(0, eq)}': '${reserved}' is not a config key`);
    let node: Record<string, unknown> = out;
    keys.slice(0, -1).forEach((k, i) => {
      const next = node[k];
      if (next === undefined) node[k] = {};
      else if (typeof next !== 'object' || next === null || Array.isArray(next))
        throw new Error(`override '${o}': ${keys.slice(0, i + 1).join('.')} is not a mapping`);
      node = node[k] as Record<string, unknown>;
    });
    node[keys[keys.length - 1]] = parseValue(o.slice(eq + 1));
  }
  return out;
}

/** `over` laid on `base`, mappings merged key by key (a value of `over` wins; arrays are values). */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(base);
  for (const [k, v] of Object.entries(over)) {
    if (RESERVED_KEYS.has(k)) throw new Error(`'${k}' is not a config key`);
    const b = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && b && typeof b === 'object' && !Array.isArray(b)
        ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
