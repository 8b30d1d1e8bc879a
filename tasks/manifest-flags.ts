/**
 * The command-line flags of a manifest's image reading (loader/image-file.ts, loader/limits.ts), shared by
 * `papo data`, `papo sft` and `papo eval`; `papo train` has them as `data.*` config keys.
 *
 *   addManifestFileFlags(cmd).action((f) => createTask({ task: 'manifest', manifest, ...manifestFileOptions(f) }))
 */
import { InvalidArgumentError, type Command } from 'commander';
import { DEFAULT_MAX_IMAGE_BYTES, DEFAULT_MAX_IMAGE_PIXELS } from './loader/limits.ts';

export interface ManifestFileFlags {
  allowOutsideManifestDir?: boolean;
  maxImageBytes?: number;
  maxImagePixels?: number;
}

const positiveInt = (flag: string) => (v: string): number => {
  const n = Number(v);
  if (!(Number.isSafeInteger(n) && n > 0)) throw new InvalidArgumentError(`${flag} must be a positive integer, got '${v}'`);
  return n;
};

export function addManifestFileFlags(cmd: Command): Command {
  return cmd
    .option('--allow-outside-manifest-dir', "let manifest image paths lead outside the manifest's directory (../x, absolute paths, links out)")
    .option('--max-image-bytes <n>', `bytes one manifest image file may have (default ${DEFAULT_MAX_IMAGE_BYTES})`, positiveInt('--max-image-bytes'))
    .option('--max-image-pixels <n>', `pixels one decoded manifest image may have (default ${DEFAULT_MAX_IMAGE_PIXELS})`, positiveInt('--max-image-pixels'));
}

/** The flags given, as task options (absent ones left to the loader's defaults). */
export function manifestFileOptions(f: ManifestFileFlags): ManifestFileFlags {
  const out: ManifestFileFlags = {};
  if (f.allowOutsideManifestDir) out.allowOutsideManifestDir = true;
  if (f.maxImageBytes !== undefined) out.maxImageBytes = f.maxImageBytes;
  if (f.maxImagePixels !== undefined) out.maxImagePixels = f.maxImagePixels;
  return out;
}

/** True when any of the flags was given (they mean nothing without a manifest). */
export const hasManifestFileFlags = (f: ManifestFileFlags): boolean => Object.keys(manifestFileOptions(f)).length > 0;
