/** Package verification as the app runs it (the engine's verifier, injected into the converter). */
import { verifyPackage } from '../../src-main/engine/index.ts';

/** `verify` option of `convertCheckpoint` & co.: verify with the engine. */
export const VERIFY = { run: verifyPackage } as const;
