#!/usr/bin/env node
// The ehrsync command. Runs the TypeScript sources directly through tsx's loader, so there is no
// build step between `git clone`, `npm install` and `npx ehrsync`.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv);
