#!/usr/bin/env node
// Entry point of the `papo` command. In a checkout (the TypeScript sources are next to it) it runs the
// sources through tsx, with no build step: both hooks are registered, as `node --import tsx` does, so that
// a user's .ts file outside an ES-module package (a reward function next to a run config) loads too. In the
// installed package only the JavaScript built into dist/ ships (`npm pack` builds it), and plain node runs it.
import { existsSync } from 'node:fs';

const sources = new URL('../cli/main.ts', import.meta.url);
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  const { register: registerCjs } = await import('tsx/cjs/api');
  register();
  registerCjs();
  await import(sources.href);
} else {
  await import('../dist/cli/main.js');
}
