#!/usr/bin/env node
// Entry point of the `papo` command: loads the TypeScript sources through tsx. Both hooks are registered,
// as `node --import tsx` does, so that a user's .ts file outside an ES-module package (a reward function
// next to a run config) loads too.
import { register } from 'tsx/esm/api';
import { register as registerCjs } from 'tsx/cjs/api';

register();
registerCjs();
await import('../cli/main.ts');
