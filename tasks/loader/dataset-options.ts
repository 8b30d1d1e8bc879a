/** The task options only the dataset task reads (`TaskOptions` of registry.ts): other tasks refuse them. Kept apart so the CLI can name them without loading any task. */
export const DATASET_ONLY = [
  'trainFiles',
  'valFiles',
  'promptKey',
  'answerKey',
  'imageKey',
  'imageDir',
  'formatPrompt',
  'maxPromptLength',
  'filterOverlongPrompts',
  'maxRowBytes',
] as const;
