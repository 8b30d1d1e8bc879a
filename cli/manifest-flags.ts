/**
 * The command-line flags of a manifest's image reading (tasks/loader/image-file.ts, tasks/loader/limits.ts), shared by
 * `papo data`, `papo sft` and `papo eval`; `papo train` has them as `data.*` config keys.
 *
 *   addManifestFileFlags(cmd).action((f) => createTask({ task: 'manifest', manifest, ...manifestFileOptions(f) }))
 */
import type { Command } from 'commander';
import { DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS } from '../tasks/loader/limits.ts';
import { intAtLeastOption } from './config-file.ts';

export interface ManifestFileFlags {
  allowOutsideManifestDir?: boolean;
  maxImageBytes?: number;
  maxImagePixels?: number;
}

export function addManifestFileFlags(cmd: Command): Command {
  return cmd
    .option('--allow-outside-manifest-dir', "let manifest image paths lead outside the manifest's directory (../x, absolute paths, links out)")
    .option('--max-image-bytes <n>', `bytes one manifest image file may have (default ${DEFAULT_MAX_IMAGE_BYTES})`, intAtLeastOption('--max-image-bytes', 1))
    .option(
      '--max-image-pixels <n>',
      `pixels one decoded manifest image may have (default ${DEFAULT_MAX_IMAGE_PIXELS})`,
      intAtLeastOption('--max-image-pixels', 1),
    );
}

/** The flags given, as task options (absent ones left to the loader's defaults). */
export function manifestFileOptions(f: ManifestFileFlags): ManifestFileFlags {
  const out: ManifestFileFlags = {};
  if (f.allowOutsideManifestDir) out.allowOutsideManifestDir = true;
  if (f.maxImageBytes !== undefined) out.maxImageBytes = f.maxImageBytes;
  if (f.maxImagePixels !== undefined) out.maxImagePixels = f.maxImagePixels;
  return out;
}
