/**
 * EasyR1's `data.format_prompt`: the path of a Jinja template rendered with the row's prompt as `content`
 * (`{{ content | trim }} Think first, then answer.`), its text stripped of surrounding whitespace first, as
 * EasyR1 does. Prompts here are at most 60 characters of printable ASCII read by a character tokenizer, so
 * only substitution is supported: `{{ content }}` and `{{ content | trim }}`; a template with statements
 * (`{% ... %}`), comments (`{# ... #}`) or any other expression is refused, naming the file and what it used.
 *
 *   const format = loadFormatPrompt('prompts/short.jinja');   // (content) => string
 */
import { readRegularFile } from '../../util/read-file.ts';

/** Bytes a template file may have. */
const MAX_TEMPLATE_BYTES = 64 * 1024;

export function loadFormatPrompt(file: string): (content: string) => string {
  const fail = (reason: string) => new Error(`data.format_prompt ${file}: ${reason}`);
  const text = readRegularFile(file, MAX_TEMPLATE_BYTES, {
    notRegular: () => fail('not a regular file'),
    tooLarge: (n) => fail(`${n} bytes, over the limit of ${MAX_TEMPLATE_BYTES} for a template`),
    system: (e) => fail((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : `cannot read it: ${(e as Error).message}`),
  })
    .toString('utf8')
    .trim();
  return compileFormatPrompt(text, file);
}

/** The template's render function; `where` names it in errors. */
export function compileFormatPrompt(template: string, where = 'template'): (content: string) => string {
  const statement = /\{%|\{#/.exec(template);
  if (statement) {
    throw new Error(
      `data.format_prompt ${where}: uses a Jinja ${statement[0] === '{%' ? 'statement ({% ... %})' : 'comment ({# ... #})'}; only {{ content }} and {{ content | trim }} are supported here (prompts are at most 60 characters)`,
    );
  }
  const parts: (string | ((c: string) => string))[] = [];
  let at = 0;
  for (const m of template.matchAll(/\{\{(.*?)\}\}/gs)) {
    parts.push(template.slice(at, m.index));
    const expr = m[1].replace(/\s+/g, ' ').trim();
    if (expr === 'content') parts.push((c) => c);
    else if (expr === 'content | trim' || expr === 'content|trim') parts.push((c) => c.trim());
    else throw new Error(`data.format_prompt ${where}: the expression {{ ${expr} }} is not supported; only {{ content }} and {{ content | trim }} are`);
    at = m.index + m[0].length;
  }
  parts.push(template.slice(at));
  if (!parts.some((p) => typeof p === 'function')) throw new Error(`data.format_prompt ${where}: has no {{ content }}, so every prompt would be the same text`);
  return (content) => parts.map((p) => (typeof p === 'string' ? p : p(content))).join('');
}
