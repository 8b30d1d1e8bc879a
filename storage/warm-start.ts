/**
 * The warm-start policy shipped with the package (`assets/warm-start`, made by `papo sft` with its
 * defaults): what `papo train` starts from unless told otherwise, found from any working directory.
 *
 * @example
 * const { config, params } = await loadWarmStart(); // same as loadPolicyWeights(warmStartPath)
 */
import { packageFile } from '../util/package-files.ts';
import { loadPolicyWeights, type SavedPolicy } from './policy-weights.ts';

/** Absolute path of the shipped warm-start weights (a policy weights directory, see policy-weights.ts). */
export const warmStartPath: string = packageFile('assets/warm-start');

/** Loads the shipped warm-start policy: its config and parameters. */
export function loadWarmStart(): Promise<SavedPolicy> {
  return loadPolicyWeights(warmStartPath);
}
