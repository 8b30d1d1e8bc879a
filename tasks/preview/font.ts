/**
 * A 5 x 7 bitmap font for printable ASCII (32..126), the classic HD44780-style glyph set: five column
 * bytes per glyph, bit 0 = top row, row 6 on the baseline. g, j, p, q and y are redrawn with descenders,
 * two rows below the baseline (the 5 x 7 set squeezes them above it, so "image" read "ima9e"). Enough to
 * label contact sheets without any font file.
 */
import type { RgbImage } from '../../util/image.ts';

const GLYPHS =
  '0000000000 00005f0000 0007000700 147f147f14 242a7f2a12 2313086462 3649552250 0005030000 001c224100 0041221c00 ' +
  '082a1c2a08 08083e0808 0050300000 0808080808 0060600000 2010080402 3e5149453e 00427f4000 4261514946 2141454b31 ' +
  '1814127f10 2745454539 3c4a494930 0171090503 3649494936 064949291e 0036360000 0056360000 0008142241 1414141414 ' +
  '4122140800 0201510906 324979413e 7e1111117e 7f49494936 3e41414122 7f4141221c 7f49494941 7f09090101 3e41415132 ' +
  '7f0808087f 00417f4100 2040413f01 7f08142241 7f40404040 7f0204027f 7f0408107f 3e4141413e 7f09090906 3e4151215e ' +
  '7f09192946 4649494931 01017f0101 3f4040403f 1f2040201f 7f2018207f 6314081463 0304780403 6151494543 00007f4141 ' +
  '0204081020 41417f0000 0402010204 4040404040 0001020400 2054545478 7f48444438 3844444420 384444487f 3854545418 ' +
  '087e090102 0c5252523e 7f08040478 00447d4000 2040443d00 007f102844 00417f4000 7c04180478 7c08040478 3844444438 ' +
  '7c14141408 081414187c 7c08040408 4854545420 043f444020 3c4040207c 1c2040201c 3c4030403c 4428102844 0c5050503c ' +
  '4464544c44 0008364100 00007f0000 0041360800 0804081008';

const TABLE: number[][] = GLYPHS.split(' ').map((g) => Array.from({ length: 5 }, (_, i) => parseInt(g.slice(2 * i, 2 * i + 2), 16)));

/**
 * Descenders: rows 7 and 8, below the baseline; '#' is ink. Rows 0..6 keep the x-height of the other
 * lower-case letters (rows 2..6).
 */
const DESCENDERS: Record<string, readonly string[]> = {
  g: ['.....', '.....', '.###.', '#...#', '#...#', '#...#', '.####', '....#', '.###.'],
  j: ['...#.', '.....', '..##.', '...#.', '...#.', '...#.', '...#.', '#..#.', '.##..'],
  p: ['.....', '.....', '####.', '#...#', '#...#', '#...#', '####.', '#....', '#....'],
  q: ['.....', '.....', '.####', '#...#', '#...#', '#...#', '.####', '....#', '....#'],
  y: ['.....', '.....', '#...#', '#...#', '#...#', '#...#', '.####', '....#', '.###.'],
};

export const GLYPH_WIDTH = 5;
/** Rows from the top of a capital to the baseline (rows 0..6). */
export const GLYPH_HEIGHT = 7;
/** Rows below the baseline that descenders use (7 and 8); line spacing must leave room for them. */
export const GLYPH_DESCENT = 2;
/** Horizontal advance in font pixels (one blank column between glyphs). */
export const ADVANCE = 6;

/** Whether font pixel (col, row) of character `ch` is ink (rows 0..8, 7 and 8 below the baseline); characters outside the table draw as '?'. */
export function glyphPixel(ch: string, col: number, row: number): boolean {
  const drawn = DESCENDERS[ch];
  if (drawn) return drawn[row]?.[col] === '#';
  if (row >= GLYPH_HEIGHT) return false;
  const code = ch.charCodeAt(0);
  const g = TABLE[code >= 32 && code <= 126 ? code - 32 : 31];
  return ((g[col] >> row) & 1) === 1;
}

/** Draws `text` with its top-left at (x, y), each font pixel a scale x scale block; clips at the edges. */
export function drawText(img: RgbImage, text: string, x: number, y: number, color: readonly [number, number, number], scale = 1): void {
  for (let k = 0; k < text.length; k++) {
    for (let col = 0; col < GLYPH_WIDTH; col++) {
      for (let row = 0; row < GLYPH_HEIGHT + GLYPH_DESCENT; row++) {
        if (!glyphPixel(text[k], col, row)) continue;
        for (let dy = 0; dy < scale; dy++) {
          for (let dx = 0; dx < scale; dx++) {
            const px = x + (k * ADVANCE + col) * scale + dx;
            const py = y + row * scale + dy;
            if (px < 0 || py < 0 || px >= img.width || py >= img.height) continue;
            img.data.set(color, (py * img.width + px) * 3);
          }
        }
      }
    }
  }
}

/** Greedy word wrap to lines of at most `width` characters (long words are cut). */
export function wrapText(text: string, width: number): string[] {
  const lines: string[] = [];
  let cur = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    let w = word;
    while (w.length > width) {
      if (cur) {
        lines.push(cur);
        cur = '';
      }
      lines.push(w.slice(0, width));
      w = w.slice(width);
    }
    if (!cur) cur = w;
    else if (cur.length + 1 + w.length <= width) cur += ` ${w}`;
    else {
      lines.push(cur);
      cur = w;
    }
  }
  if (cur) lines.push(cur);
  return lines;
}
