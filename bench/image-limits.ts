/**
 * What one manifest image costs, and what the limits save: time and peak memory (max RSS of a fresh
 * process per case) to load a one-line manifest whose image is
 *   - a 187 KB-class PNG declaring 8000 x 8000 pixels: refused from its header (default limits), and,
 *     with --unbounded, decoded with the pixel limit raised (what loading cost before the limit);
 *   - a 4096 x 4096 PNG and JPEG: the largest size the default pixel limit admits.
 * Every case runs in its own child process so max RSS is that case's peak (Linux carries max RSS across
 * exec, so the images are written by a child too, keeping the parent small).
 *
 *   node --import tsx bench/image-limits.ts [--unbounded]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { loadManifest } from '../tasks/loader/manifest.ts';

const { values: args } = parseArgs({ options: { case: { type: 'string' }, dir: { type: 'string' }, unbounded: { type: 'boolean', default: false } } });

/** A noise-free gradient image, so the PNG compresses like a real flat-ish picture. */
function gradientRgba(w: number, h: number): Buffer {
  const data = Buffer.alloc(w * h * 4);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data.set([x & 255, y & 255, 128, 255], (y * w + x) * 4);
  return data;
}

function writePng(file: string, w: number, h: number): void {
  const png = new PNG({ width: w, height: h });
  png.data = gradientRgba(w, h);
  fs.writeFileSync(file, PNG.sync.write(png, { deflateLevel: 9 }));
}

const CASES: Record<string, { image: string; maxImagePixels?: number }> = {
  'png 8000x8000, default limits (refused)': { image: 'big.png' },
  'png 8000x8000, pixel limit raised (decoded)': { image: 'big.png', maxImagePixels: 64e6 },
  'png 4096x4096, default limits': { image: 'p4096.png' },
  'jpeg 4096x4096, default limits': { image: 'j4096.jpg' },
};

if (args.case === 'write') {
  const dir = args.dir!;
  writePng(path.join(dir, 'big.png'), 8000, 8000);
  writePng(path.join(dir, 'p4096.png'), 4096, 4096);
  fs.writeFileSync(path.join(dir, 'j4096.jpg'), jpeg.encode({ width: 4096, height: 4096, data: gradientRgba(4096, 4096) }, 90).data);
} else if (args.case) {
  // child: load the manifest once, print ms and max RSS
  const c = CASES[args.case];
  const file = path.join(args.dir!, `${c.image}.jsonl`);
  fs.writeFileSync(file, `${JSON.stringify({ image: c.image, question: 'q', answer: '1' })}\n`);
  const t0 = performance.now();
  const m = loadManifest(file, { height: 28, width: 56, onError: 'skip', maxImagePixels: c.maxImagePixels });
  const ms = performance.now() - t0;
  const outcome = m.records.length ? 'loaded' : `refused: ${m.issues[0]?.reason.slice(0, 60)}`;
  console.log(JSON.stringify({ ms, maxRssMB: process.resourceUsage().maxRSS / 1024, outcome }));
} else {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-image-limits-'));
  try {
    const w = spawnSync(process.execPath, ['--import', 'tsx', process.argv[1], '--case', 'write', '--dir', dir], { encoding: 'utf8' });
    if (w.status !== 0) throw new Error(w.stderr);
    // the baseline: an empty process that loads the same modules
    const base = spawnSync(
      process.execPath,
      ['--import', 'tsx', '-e', "await import('./tasks/loader/manifest.ts'); console.log(process.resourceUsage().maxRSS / 1024)"],
      { encoding: 'utf8' },
    );
    console.log(`baseline process (modules loaded, nothing decoded): max RSS ${Number(base.stdout).toFixed(0)} MB`);
    for (const name of Object.keys(CASES)) {
      if (name.includes('raised') && !args.unbounded) continue;
      const size = (fs.statSync(path.join(dir, CASES[name].image)).size / 1024).toFixed(0);
      const r = spawnSync(process.execPath, ['--import', 'tsx', process.argv[1], '--case', name, '--dir', dir], { encoding: 'utf8' });
      if (r.status !== 0) throw new Error(`${name}: ${r.stderr}`);
      const out = JSON.parse(r.stdout) as { ms: number; maxRssMB: number; outcome: string };
      console.log(
        `${name.padEnd(46)} file ${size.padStart(6)} KB  ${out.ms.toFixed(0).padStart(6)} ms  max RSS ${out.maxRssMB.toFixed(0).padStart(5)} MB  ${out.outcome}`,
      );
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
