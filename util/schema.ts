/** Validating configs with zod: one error message format for every schema, naming each bad key. */
import type { z } from 'zod';

/** `key.path: message` for each issue, joined with '; '. */
export function formatIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/** Parses `input` or throws `invalid <what>: <key>: <message>; ...`. */
export function parseConfig<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const r = schema.safeParse(input);
  if (!r.success) throw new Error(`invalid ${what}: ${formatIssues(r.error)}`);
  return r.data;
}
