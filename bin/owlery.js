#!/usr/bin/env node
// Entry point of the `owlery` command: runs the TypeScript CLI through tsx's loader, so the
// command works right after `npm install` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src-main/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
