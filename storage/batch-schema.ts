/**
 * The batch schema: every per-prompt and per-response field of a rollout batch (operators/types.ts),
 * declared once with its layout and element type. Slicing whole groups (`selectGroups`, `concatGroups`:
 * dynamic sampling, the staleness guard), the rollout log's writer and reader, and the batch rebuilt from
 * the log (`batchFromLog`: replay, offline training) all derive from it, so a field a stage adds is carried
 * through every one of them once it is declared here.
 *
 * Layouts: `value`, one element per row of a typed array (`Float32Array [P * G]`); `tokens`, one typed row
 * per response (`Float32Array[]`, per-token values); `object`, one JavaScript value per row (not logged:
 * rebuilt when a logged step is read).
 *
 * @example
 * // a stage of one's own that adds a per-response score, kept through dynamic sampling and the log
 * registerBatchField({ name: 'lengthPenalty', per: 'response', layout: 'value', dtype: 'float32', log: 'length_penalty' });
 */

export type FieldDtype = 'float32' | 'int32' | 'uint8';
export type TypedRow = Float32Array | Int32Array | Uint8Array;

export interface BatchField {
  /** the key on the batch */
  readonly name: string;
  /** indexed by prompt (P entries) or by response (P * G, prompt-major) */
  readonly per: 'prompt' | 'response';
  readonly layout: 'value' | 'tokens' | 'object';
  /** element type of `value` and `tokens` fields */
  readonly dtype?: FieldDtype;
  /** the array's name in the rollout log (absent: not logged) */
  readonly log?: string;
  /** added by a later stage, or only with some objectives: absent from some batches */
  readonly optional?: boolean;
}

/** The fields of the built-in stages, in the order the graph adds them. */
export const BUILTIN_BATCH_FIELDS: readonly BatchField[] = [
  { name: 'records', per: 'prompt', layout: 'object' },
  { name: 'indices', per: 'prompt', layout: 'value', dtype: 'int32', log: 'record_index' },
  { name: 'responses', per: 'response', layout: 'tokens', dtype: 'int32', log: 'tokens' },
  { name: 'oldLogprobs', per: 'response', layout: 'tokens', dtype: 'float32', log: 'old_logprobs' },
  { name: 'texts', per: 'response', layout: 'object' },
  { name: 'finished', per: 'response', layout: 'value', dtype: 'uint8', log: 'finished' },
  { name: 'versions', per: 'response', layout: 'value', dtype: 'int32', log: 'versions' },
  { name: 'rewards', per: 'response', layout: 'value', dtype: 'float32', log: 'rewards' },
  { name: 'accuracy', per: 'response', layout: 'value', dtype: 'float32', log: 'accuracy' },
  { name: 'format', per: 'response', layout: 'value', dtype: 'float32', log: 'format' },
  { name: 'maskedImages', per: 'prompt', layout: 'object', optional: true },
  { name: 'maskedLogprobs', per: 'response', layout: 'tokens', dtype: 'float32', log: 'masked_logprobs', optional: true },
  { name: 'refLogprobs', per: 'response', layout: 'tokens', dtype: 'float32', log: 'ref_logprobs', optional: true },
  { name: 'advantages', per: 'response', layout: 'value', dtype: 'float32', log: 'advantages', optional: true },
];

/** Names the rollout log uses for arrays that are not fields. */
const RESERVED_LOG_NAMES = new Set(['offsets']);

const registered: BatchField[] = [];

/**
 * Declares a field that a stage of one's own adds to the batch: from then on it is sliced with its groups
 * (dynamic sampling, the staleness guard), written to and read from the rollout log (with `log`), and
 * restored by replay. Registered fields are optional (a batch before the stage has none).
 */
export function registerBatchField(field: Omit<BatchField, 'optional'>): void {
  const f: BatchField = { ...field, optional: true };
  const where = `registerBatchField(${JSON.stringify(f.name)})`;
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(f.name)) throw new Error(`${where}: a field name is an identifier`);
  if (f.per !== 'prompt' && f.per !== 'response') throw new Error(`${where}: per must be 'prompt' or 'response'`);
  if (!['value', 'tokens', 'object'].includes(f.layout)) throw new Error(`${where}: layout must be 'value', 'tokens' or 'object'`);
  if (f.layout !== 'object' && !['float32', 'int32', 'uint8'].includes(f.dtype ?? ''))
    throw new Error(`${where}: a ${f.layout} field needs dtype float32, int32 or uint8`);
  if (f.layout === 'tokens' && f.per !== 'response') throw new Error(`${where}: per-token values are per response`);
  if (f.layout === 'object' && f.log) throw new Error(`${where}: object fields are not logged (give it a typed layout to log it)`);
  if (f.log !== undefined && !/^[a-z][a-z0-9_]*$/.test(f.log)) throw new Error(`${where}: log names are snake_case`);
  const existing = registered.find((r) => r.name === f.name);
  if (existing && JSON.stringify(existing) === JSON.stringify(f)) return; // the same declaration again (a module imported twice)
  if (existing || BUILTIN_BATCH_FIELDS.some((b) => b.name === f.name)) throw new Error(`${where}: the batch already has a field ${f.name}`);
  if (f.log && (RESERVED_LOG_NAMES.has(f.log) || batchFields().some((b) => b.log === f.log)))
    throw new Error(`${where}: the rollout log already has an array ${f.log}`);
  registered.push(f);
}

/** Every field: the built-in ones, then those registered. */
export function batchFields(): readonly BatchField[] {
  return [...BUILTIN_BATCH_FIELDS, ...registered];
}

/** The registered fields (what the rollout log describes in a step's attributes). */
export function registeredBatchFields(): readonly BatchField[] {
  return registered;
}

/** A typed array of `dtype` with `n` elements. */
export function typedArray(dtype: FieldDtype, n: number): TypedRow {
  return dtype === 'float32' ? new Float32Array(n) : dtype === 'int32' ? new Int32Array(n) : new Uint8Array(n);
}

/** The rows `rows` of a field's value, in that order. */
export function pickRows(field: BatchField, value: unknown, rows: readonly number[]): unknown {
  if (field.layout === 'value') {
    const src = value as TypedRow;
    const out = typedArray(field.dtype!, rows.length);
    rows.forEach((i, j) => (out[j] = src[i]));
    return out;
  }
  return rows.map((i) => (value as readonly unknown[])[i]);
}

/** A field's value of `a` followed by that of `b`. */
export function concatRows(field: BatchField, a: unknown, b: unknown): unknown {
  if (field.layout === 'value') {
    const x = a as TypedRow;
    const y = b as TypedRow;
    const out = typedArray(field.dtype!, x.length + y.length);
    out.set(x);
    out.set(y, x.length);
    return out;
  }
  return [...(a as readonly unknown[]), ...(b as readonly unknown[])];
}
