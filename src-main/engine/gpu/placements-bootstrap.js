// Entry of the `owlery inspect --placements` child when running from TypeScript sources: registers
// tsx's loader, then runs the child (placements-child.ts).
import { register } from 'tsx/esm/api';

register();
await import('./placements-child.ts');
