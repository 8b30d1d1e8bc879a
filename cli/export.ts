/** `papo export RUN`: saved weights as one self-contained ONNX model (storage/policy-export.ts). */
import type { Command } from 'commander';

interface ExportFlags {
  out: string;
  force?: boolean;
  kvCache?: boolean;
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      'write a trained policy as one self-contained ONNX model (weights baked in; tokenizer, image preprocessing and inputs/outputs described in its metadata) for onnxruntime in any language',
    )
    .argument('<weights>', 'a papo sft weights directory, a checkpoint, or a run directory (its latest complete checkpoint)')
    .option('--out <file>', 'the ONNX file to write', 'policy.onnx')
    .option('--force', 'replace an existing --out file')
    .option('--kv-cache', 'the key/value-cache variant: past_key.i / past_value.i in, present_key.i / present_value.i out, logits of the new tokens only')
    .addHelpText(
      'after',
      `
The model: inputs pixels (uint8 [batch, H, W, 3], RGB), input_ids and attention_mask (int64 [batch, sequence]:
BOS + question tokens + response so far, rows left-padded with PAD 0); output logits (float32 [batch, sequence,
vocab]: the next token after each position). metadata_props papo.tokenizer, papo.image, papo.io,
papo.generation and papo.policy_config (JSON) say how to build the inputs and generate. With --kv-cache each
call takes only the new tokens and the previous call's keys and values (papo.io lists them).

Examples:
  papo export runs/train --out policy.onnx
  papo export runs/sft/weights --out sft.onnx --force
  papo export runs/train --out policy-kv.onnx --kv-cache`,
    )
    .action(async (weights: string, f: ExportFlags) => {
      const { exportPolicyOnnx } = await import('../storage/policy-export.ts');
      const r = await exportPolicyOnnx(weights, f.out, { force: f.force, kvCache: f.kvCache });
      const step = r.meta.step === undefined ? '' : `, step ${String(r.meta.step)}`;
      process.stdout.write(`papo export: wrote ${r.file} (${(r.bytes / 2 ** 20).toFixed(2)} MiB) from the weights in ${r.weightsDir}${step}\n`);
    });
}
