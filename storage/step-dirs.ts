/** The name of a step's directory in checkpoints/ and rollouts/: `step_000120` (sorts by step up to 10^6 - 1). */
export const stepDirName = (step: number) => `step_${String(step).padStart(6, '0')}`;
