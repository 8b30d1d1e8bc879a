/**
 * Contact sheets: N records in a grid, each image upscaled (nearest neighbour, so pixels stay visible)
 * with its family, question and answer printed underneath in the built-in 5 x 7 font. This is what a
 * person checks before training: that the model sees what the question asks about.
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { PNG } from 'pngjs';
import { makeImage, type RgbImage } from '../../util/image.ts';
import type { TaskRecord } from '../types.ts';
import { ADVANCE, GLYPH_DESCENT, GLYPH_HEIGHT, drawText, wrapText } from './font.ts';

export interface ContactSheetOptions {
  /** Image upscale factor. Default 4. */
  scale?: number;
  /** Font pixel size. Default 2. */
  textScale?: number;
  /** Grid columns. Default: about square in pixels. */
  columns?: number;
  /** Also print the demonstration's reasoning. Default false. */
  showReasoning?: boolean;
}

const BG: [number, number, number] = [32, 32, 40];
const FRAME: [number, number, number] = [90, 90, 110];
const WHITE: [number, number, number] = [240, 240, 240];
const GREY: [number, number, number] = [150, 150, 165];
const GREEN: [number, number, number] = [110, 230, 120];
const AMBER: [number, number, number] = [240, 190, 80];
const PAD = 8;

interface Label {
  text: string;
  color: [number, number, number];
}

export function renderContactSheet(records: readonly TaskRecord[], opts: ContactSheetOptions = {}): RgbImage {
  if (records.length === 0) throw new Error('contact sheet needs at least one record');
  const scale = opts.scale ?? 4;
  const ts = opts.textScale ?? 2;
  const cellW = Math.max(...records.map((r) => r.image.width)) * scale;
  const imgH = Math.max(...records.map((r) => r.image.height)) * scale;
  const charsPerLine = Math.max(8, Math.floor(cellW / (ADVANCE * ts)));
  const lineH = (GLYPH_HEIGHT + GLYPH_DESCENT + 1) * ts;
  const labels = records.map((r) => labelsFor(r, charsPerLine, opts.showReasoning ?? false));
  const textH = Math.max(...labels.map((l) => l.length)) * lineH;
  const cellH = imgH + PAD / 2 + textH;
  const cols = opts.columns ?? Math.max(1, Math.min(records.length, Math.round(Math.sqrt((records.length * cellH) / cellW))));
  const rows = Math.ceil(records.length / cols);
  const sheet = makeImage(PAD + rows * (cellH + PAD), PAD + cols * (cellW + PAD));
  for (let p = 0; p < sheet.height * sheet.width; p++) sheet.data.set(BG, p * 3);
  records.forEach((r, k) => {
    const x0 = PAD + (k % cols) * (cellW + PAD);
    const y0 = PAD + Math.floor(k / cols) * (cellH + PAD);
    frame(sheet, x0 - 1, y0 - 1, r.image.width * scale + 2, r.image.height * scale + 2);
    blitScaled(sheet, r.image, x0, y0, scale);
    labels[k].forEach((l, i) => drawText(sheet, l.text, x0, y0 + imgH + PAD / 2 + i * lineH, l.color, ts));
  });
  return sheet;
}

export function encodePng(img: RgbImage): Buffer {
  const png = new PNG({ width: img.width, height: img.height });
  for (let p = 0; p < img.width * img.height; p++) {
    png.data[p * 4] = img.data[p * 3];
    png.data[p * 4 + 1] = img.data[p * 3 + 1];
    png.data[p * 4 + 2] = img.data[p * 3 + 2];
    png.data[p * 4 + 3] = 255;
  }
  return PNG.sync.write(png);
}

export function writeContactSheet(path: string, records: readonly TaskRecord[], opts: ContactSheetOptions = {}): RgbImage {
  const sheet = renderContactSheet(records, opts);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodePng(sheet));
  return sheet;
}

function labelsFor(r: TaskRecord, width: number, reasoning: boolean): Label[] {
  const out: Label[] = [{ text: `${r.family} (${r.visionDependency})`, color: GREY }];
  for (const line of wrapText(r.question, width)) out.push({ text: line, color: WHITE });
  if (reasoning && r.demonstration) {
    const m = /<think>([\s\S]*)<\/think>/.exec(r.demonstration);
    if (m) for (const line of wrapText(`think: ${m[1]}`, width)) out.push({ text: line, color: AMBER });
  }
  for (const line of wrapText(`A: ${r.answer}`, width)) out.push({ text: line, color: GREEN });
  return out;
}

/** Copies `src` into `dst` at (x0, y0), each pixel an s x s block. */
export function blitScaled(dst: RgbImage, src: RgbImage, x0: number, y0: number, s: number): void {
  for (let y = 0; y < src.height * s; y++) {
    for (let x = 0; x < src.width * s; x++) {
      const sp = (Math.floor(y / s) * src.width + Math.floor(x / s)) * 3;
      dst.data.set(src.data.subarray(sp, sp + 3), ((y0 + y) * dst.width + x0 + x) * 3);
    }
  }
}

/** A one-pixel frame of w x h with its top-left at (x, y). */
export function frame(img: RgbImage, x: number, y: number, w: number, h: number): void {
  for (let i = 0; i < w; i++) for (const yy of [y, y + h - 1]) img.data.set(FRAME, (yy * img.width + x + i) * 3);
  for (let j = 0; j < h; j++) for (const xx of [x, x + w - 1]) img.data.set(FRAME, ((y + j) * img.width + xx) * 3);
}
