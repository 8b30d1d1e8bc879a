/**
 * Regenerates the warm-start checkpoint shipped in assets/warm-start (`papo sft` with its defaults) and
 * checks that it is bit-identical to the shipped one: same config, and every parameter's bytes equal.
 *
 *   node --import tsx scripts/warm-start.ts            # train into a temporary directory and compare
 *   node --import tsx scripts/warm-start.ts --write    # ... and replace assets/warm-start if it differs
 *
 * Exit code 0 when identical (or written), 1 when it differs.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runSft } from '../pipelines/sft.ts';
import { loadPolicyWeights } from '../storage/policy-weights.ts';
import { SHIPPED_WARM_START } from '../pipelines/train-config.ts';

const write = process.argv.includes('--write');
const out = fs.mkdtempSync(path.join(os.tmpdir(), 'papo-warm-start-'));
try {
  // The shipped checkpoint was trained by the tfjs trainer (wasm backend): regenerate it the same way.
  const { weightsDir } = await runSft({ worker: { actor: { engine: 'tfjs' } }, trainer: { save_checkpoint_path: out } });
  const fresh = await loadPolicyWeights(weightsDir);
  let differences: string[] = [];
  if (fs.existsSync(SHIPPED_WARM_START)) {
    const shipped = await loadPolicyWeights(SHIPPED_WARM_START);
    if (JSON.stringify(shipped.config) !== JSON.stringify(fresh.config)) differences.push('policy config');
    for (const [name, a] of Object.entries(fresh.params)) {
      const b = shipped.params[name];
      const same = b && a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
      if (!same) differences.push(name);
    }
  } else differences = ['(no shipped checkpoint)'];
  if (differences.length === 0) {
    console.log(`identical: the regenerated checkpoint equals ${SHIPPED_WARM_START} bit for bit`);
  } else if (write) {
    fs.rmSync(SHIPPED_WARM_START, { recursive: true, force: true });
    fs.cpSync(weightsDir, SHIPPED_WARM_START, { recursive: true });
    console.log(`written: ${SHIPPED_WARM_START} replaced (differed in ${differences.length} entries: ${differences.slice(0, 5).join(', ')})`);
  } else {
    console.log(
      `DIFFERENT: ${differences.length} entries differ (${differences.slice(0, 5).join(', ')}); rerun with --write to replace the shipped checkpoint`,
    );
    process.exitCode = 1;
  }
} finally {
  fs.rmSync(out, { recursive: true, force: true });
}
