/**
 * The rollout sheet: one logged step, a row per prompt. Left, the image and its masked view (upscaled,
 * nearest neighbour), the family, question and answer and the group's mean kl_prcp; right, the G responses,
 * each with its reward (green when correct), advantage and mean per-token kl_prcp, and its tokens drawn on a
 * background whose heat is that token's kl_prcp: the tokens whose probability depends on the image, which the
 * perception loss pushes. Plain data in (pipelines/rollout-sheet.ts gathers it from a run), RGB image out.
 */
import { makeImage, type RgbImage } from '../../util/image.ts';
import { ADVANCE, GLYPH_DESCENT, GLYPH_HEIGHT, drawText, wrapText } from './font.ts';
import { blitScaled, frame } from './contact-sheet.ts';

type Rgb = readonly [number, number, number];

export interface SheetResponse {
  /** the response's tokens as text (a markup token such as `<answer>` is one) */
  tokens: readonly string[];
  /** per token: kl_prcp, k3 between the log-probs on the original and the masked image */
  tokenKl?: ArrayLike<number>;
  reward: number;
  correct: boolean;
  advantage: number;
  /** mean of tokenKl over the response's tokens */
  klPrcp?: number;
}

export interface SheetPrompt {
  image: RgbImage;
  /** the masked view the masked-view log-probs were computed on */
  masked?: RgbImage;
  /** e.g. `read (vision-dependent) #12` */
  title: string;
  question: string;
  answer: string;
  responses: readonly SheetResponse[];
}

export interface RolloutSheetOptions {
  /** lines above the rows */
  header?: readonly string[];
  /** kl_prcp drawn at full heat, and above (default: the 99th percentile of the sheet's per-token values) */
  heatScale?: number;
  /** image upscale factor (default 3) */
  scale?: number;
  /** font pixel size (default 2) */
  textScale?: number;
  /** characters of the question column (default 26) */
  questionChars?: number;
}

const BG: Rgb = [28, 28, 36];
const RULE: Rgb = [70, 70, 88];
const WHITE: Rgb = [235, 235, 235];
const GREY: Rgb = [150, 150, 165];
const GREEN: Rgb = [110, 220, 120];
const RED: Rgb = [240, 110, 100];
const AMBER: Rgb = [240, 190, 80];
const HOT: Rgb = [230, 70, 20];
const PAD = 10;
/** reward, advantage, kl_prcp, then the tokens: `0.90 +1.32 0.231  ` */
const PREFIX_CHARS = 19;

/** The heat colour of kl_prcp `k` on a scale whose top is `top`. */
export function heatColor(k: number, top: number): Rgb {
  const t = top > 0 && Number.isFinite(k) ? Math.min(1, Math.max(0, k / top)) : 0;
  return [0, 1, 2].map((c) => Math.round(BG[c] + t * (HOT[c] - BG[c]))) as unknown as Rgb;
}

function fillRect(img: RgbImage, x: number, y: number, w: number, h: number, color: Rgb): void {
  for (let yy = Math.max(0, y); yy < Math.min(img.height, y + h); yy++) {
    for (let xx = Math.max(0, x); xx < Math.min(img.width, x + w); xx++) img.data.set(color, (yy * img.width + xx) * 3);
  }
}

/** The q-quantile of xs (nearest rank); 0 for none. */
function percentile(xs: number[], q: number): number {
  if (xs.length === 0) return 0;
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

const signed = (x: number) => `${x >= 0 ? '+' : '-'}${Math.abs(x).toFixed(2)}`;

export function renderRolloutSheet(prompts: readonly SheetPrompt[], opts: RolloutSheetOptions = {}): RgbImage {
  if (prompts.length === 0) throw new Error('rollout sheet needs at least one prompt');
  const s = opts.scale ?? 3;
  const ts = opts.textScale ?? 2;
  const charW = ADVANCE * ts;
  const lineH = (GLYPH_HEIGHT + GLYPH_DESCENT + 2) * ts;
  const qChars = opts.questionChars ?? 26;
  const imgW = Math.max(...prompts.map((p) => p.image.width)) * s;
  const imgH = Math.max(...prompts.map((p) => p.image.height)) * s;
  const allKl = prompts.flatMap((p) => p.responses.flatMap((r) => Array.from(r.tokenKl ?? [])));
  const top = opts.heatScale ?? percentile(allKl.filter(Number.isFinite), 0.99);
  const respChars = PREFIX_CHARS + Math.max(8, ...prompts.flatMap((p) => p.responses.map((r) => r.tokens.join('').length)));

  const xMasked = PAD + imgW + PAD;
  const xText = xMasked + imgW + PAD;
  const xResp = xText + qChars * charW + PAD;
  const header = [...(opts.header ?? []), `token background: per-token kl_prcp from 0 (none) to ${top.toPrecision(3)} and above (full)`];
  // Wide enough for the responses, the header lines and the heat legend after the last of them.
  const headerChars = Math.max(...header.slice(0, -1).map((l) => l.length), header.at(-1)!.length + 2 + 20);
  const width = Math.max(xResp + respChars * charW, PAD + headerChars * charW) + PAD;
  const headerH = PAD + header.length * lineH + lineH + PAD;
  const blocks = prompts.map((p) => {
    const lines = [...wrapText(p.question, qChars), ...wrapText(`A: ${p.answer}`, qChars)].length + 2;
    return Math.max(imgH + lineH, lines * lineH, p.responses.length * lineH) + PAD;
  });
  const height = headerH + blocks.reduce((a, b) => a + 1 + PAD / 2 + b, 0) + PAD;
  const sheet = makeImage(height, width);
  fillRect(sheet, 0, 0, width, height, BG);

  // Header, the heat legend, and the response columns' titles.
  header.forEach((line, i) => drawText(sheet, line, PAD, PAD + i * lineH, i === header.length - 1 ? GREY : WHITE, ts));
  const legendX = PAD + (header.at(-1)!.length + 2) * charW;
  for (let i = 0; i < 20; i++) fillRect(sheet, legendX + i * charW, PAD + (header.length - 1) * lineH - 2, charW, lineH - 4, heatColor((i + 0.5) / 20, 1));
  drawText(sheet, 'image', PAD, headerH - lineH - 4, GREY, ts);
  drawText(sheet, 'masked view', xMasked, headerH - lineH - 4, GREY, ts);
  drawText(sheet, 'question / answer', xText, headerH - lineH - 4, GREY, ts);
  drawText(sheet, 'rewd  adv  kl_prcp response', xResp, headerH - lineH - 4, GREY, ts);

  let y = headerH;
  prompts.forEach((p, k) => {
    fillRect(sheet, 0, y, width, 1, RULE);
    y += 1 + PAD / 2;
    frame(sheet, PAD - 1, y - 1, p.image.width * s + 2, p.image.height * s + 2);
    blitScaled(sheet, p.image, PAD, y, s);
    if (p.masked) {
      frame(sheet, xMasked - 1, y - 1, p.masked.width * s + 2, p.masked.height * s + 2);
      blitScaled(sheet, p.masked, xMasked, y, s);
    } else drawText(sheet, '(no masked view)', xMasked, y + imgH / 2, GREY, ts);

    const meanKl = p.responses.map((r) => r.klPrcp).filter((v): v is number => v !== undefined);
    const left: { text: string; color: Rgb }[] = [
      { text: p.title, color: GREY },
      ...wrapText(p.question, qChars).map((text) => ({ text, color: WHITE })),
      ...wrapText(`A: ${p.answer}`, qChars).map((text) => ({ text, color: GREEN })),
      ...(meanKl.length ? [{ text: `kl_prcp ${(meanKl.reduce((a, b) => a + b, 0) / meanKl.length).toFixed(3)}`, color: AMBER }] : []),
    ];
    left.forEach((l, i) => drawText(sheet, l.text, xText, y + i * lineH, l.color, ts));

    p.responses.forEach((r, g) => {
      const ry = y + g * lineH;
      drawText(sheet, r.reward.toFixed(2), xResp, ry, r.correct ? GREEN : RED, ts);
      drawText(sheet, signed(r.advantage), xResp + 5 * charW, ry, r.advantage > 0 ? GREEN : r.advantage < 0 ? RED : GREY, ts);
      drawText(sheet, r.klPrcp === undefined ? '  -' : r.klPrcp.toFixed(3), xResp + 11 * charW, ry, AMBER, ts);
      let x = xResp + PREFIX_CHARS * charW;
      r.tokens.forEach((t, i) => {
        if (r.tokenKl) fillRect(sheet, x, ry - ts, t.length * charW, lineH - ts, heatColor(r.tokenKl[i], top));
        drawText(sheet, t, x, ry, WHITE, ts);
        x += t.length * charW;
      });
    });
    y += blocks[k];
  });
  return sheet;
}
