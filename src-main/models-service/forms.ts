/**
 * Which form of a model fits this machine: the facts (memory, free disk where models go, the GPU
 * the engine can use and its memory when known) and, for each form the converter can make (its
 * sizes from `models/forms.ts`), where it would run, how fast, whether it fits, and the one to
 * recommend, with the reason in words. The app's import and download flows and
 * `owlery convert --preset auto` use the same rules.
 *
 * The rules, in order:
 * 1. A form fits when the conversion has the disk it needs and running it leaves the system
 *    {@link MEMORY_HEADROOM} of memory.
 * 2. With a (hardware) GPU whose memory is known and holds the 16-bit form, and the form fits: GPU;
 *    a card that holds only the 4-bit GPU form (6–8 GB): that one.
 * 3. Else the laptop form (4-bit language model, 8-bit vision) when it fits: the fastest on a
 *    processor, and it runs on a GPU as well.
 * 4. Else the smallest form, saying that this machine is short of memory or disk for it.
 * Full precision is never recommended: it gives the reference numbers at several times the size.
 */
import { freemem, totalmem } from 'node:os';
import type { FormEstimate } from '../../models/forms.ts';
import { freeDiskBytes } from '../../models/convert.ts';
import type { MachineSummary, ModelFormChoice, ModelForms, ModelPreset, SpeedClass } from '../../src-shared/ipc/index.ts';

/** Memory left for the system and other apps when a model runs. */
export const MEMORY_HEADROOM = 1.5 * 2 ** 30;

/**
 * A graphics card the engine can use. Shaped like the engine's adapter description, so a more
 * precise source (the operating system's adapter list, with its memory) plugs in as it is.
 */
export interface MachineGpu {
  name: string;
  /** Its own memory (VRAM; the machine's for a unified-memory GPU), when known. */
  memoryBytes?: number;
  /** A software rasterizer: never worth a GPU form. */
  software?: boolean;
}

/** What the rules know about this machine. */
export interface MachineFacts {
  totalMemoryBytes: number;
  freeMemoryBytes: number;
  /** Free disk where the package would be written. */
  freeDiskBytes: number;
  gpu: MachineGpu | null;
}

/** The facts of this machine: its memory, the free disk at `dir` (or its nearest existing parent), and `gpu`. */
export async function machineFacts(dir: string, gpu: MachineGpu | null = null): Promise<MachineFacts> {
  return { totalMemoryBytes: totalmem(), freeMemoryBytes: freemem(), freeDiskBytes: await freeDiskBytes(dir), gpu };
}

const TITLES: Record<ModelPreset, { title: string; summary: string }> = {
  cpu: { title: 'Laptop', summary: '4-bit language model, 8-bit vision' },
  'gpu-int4': { title: 'Small GPU', summary: '4-bit language model, 16-bit vision, for 6–8 GB graphics cards' },
  gpu: { title: 'GPU', summary: '16-bit throughout' },
  reference: { title: 'Full precision', summary: '32-bit floats: the official numbers exactly' },
};

/** `16 GB`: sizes in the words of the choice texts (decimal, like file managers). */
function gb(bytes: number): string {
  const v = bytes / 1e9;
  return v >= 10 ? `${Math.round(v)} GB` : v >= 1 ? `${v.toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

function usableGpu(m: MachineFacts): MachineGpu | null {
  return m.gpu && !m.gpu.software ? m.gpu : null;
}

/** Where a form would run and how fast, on this machine. */
function speedOf(preset: ModelPreset, onGpu: boolean): { speed: SpeedClass; speedText: string } {
  if (onGpu) {
    return preset === 'reference'
      ? { speed: 'medium', speedText: 'Runs on the graphics card; full precision reads twice the bytes of 16-bit for every word.' }
      : { speed: 'fast', speedText: 'Runs on the graphics card: fast.' };
  }
  if (preset === 'cpu') return { speed: 'fast', speedText: 'Runs on the processor: the fastest form there (about 6 words a second on a 2-core laptop).' };
  if (preset === 'gpu-int4') return { speed: 'medium', speedText: 'Runs on the processor with the decoder made for graphics cards: slower than the laptop form.' };
  return {
    speed: 'slow',
    speedText: `Runs on the processor, ${preset === 'gpu' ? 'as 32-bit (the processor widens 16-bit weights)' : 'at full precision'}: several times slower than the laptop form.`,
  };
}

/** One form on this machine: sizes, where it runs, speed, and whether it fits. */
function choiceFor(e: FormEstimate, m: MachineFacts): ModelFormChoice {
  const preset = e.preset as ModelPreset;
  const gpu = usableGpu(m);
  // A form runs on the GPU when one works here and the form fits its memory (or its memory is unknown).
  const onGpu = gpu !== null && preset !== 'cpu' && (gpu.memoryBytes === undefined || e.gpuMemoryBytes <= gpu.memoryBytes);
  const problems: string[] = [];
  if (e.convertBytes > m.freeDiskBytes) problems.push(`needs about ${gb(e.convertBytes)} of free disk; ${gb(m.freeDiskBytes)} is free`);
  if (!onGpu && e.memoryBytes + MEMORY_HEADROOM > m.totalMemoryBytes) {
    problems.push(`needs about ${gb(e.memoryBytes)} of memory; this computer has ${gb(m.totalMemoryBytes)}`);
  }
  const problem = problems.length ? `${problems.join(', and ')}.`.replace(/^./, (c) => c.toUpperCase()) : null;
  return {
    preset,
    ...TITLES[preset],
    name: e.name,
    diskBytes: e.diskBytes,
    convertBytes: e.convertBytes,
    memoryBytes: e.memoryBytes,
    gpuMemoryBytes: e.gpuMemoryBytes,
    runsOn: onGpu ? 'gpu' : 'cpu',
    ...speedOf(preset, onGpu),
    fits: problem === null,
    problem,
  };
}

/** What the machine summary says about the GPU, for reasons. */
function gpuWords(m: MachineFacts): string {
  const gpu = usableGpu(m);
  if (!gpu) return 'no graphics card Owlery can use';
  return gpu.memoryBytes === undefined ? `a graphics card (${gpu.name}) whose memory is not known` : `a graphics card (${gpu.name}) with ${gb(gpu.memoryBytes)}`;
}

/**
 * Every form of a model on this machine, and the one to recommend with the reason (see the module
 * comment). `model` names what the sizes are for (`mPLUG-Owl2 7B`).
 */
export function recommendForm(model: string, estimates: readonly FormEstimate[], m: MachineFacts): ModelForms {
  const choices = estimates.map((e) => choiceFor(e, m));
  const by = (p: ModelPreset) => choices.find((c) => c.preset === p);
  const gpu = usableGpu(m);
  const machineLine = `This computer has ${gb(m.totalMemoryBytes)} of memory, ${gb(m.freeDiskBytes)} of free disk and ${gpuWords(m)}`;
  const g = by('gpu');
  const small = by('gpu-int4');
  const laptop = by('cpu');
  let recommended: ModelPreset;
  let reason: string;
  if (gpu?.memoryBytes !== undefined && g && g.fits && g.runsOn === 'gpu') {
    recommended = 'gpu';
    reason = `${machineLine}: the GPU form (${gb(g.diskBytes)}) fits on the card and answers fastest.`;
  } else if (gpu?.memoryBytes !== undefined && small && small.fits && small.runsOn === 'gpu') {
    recommended = 'gpu-int4';
    reason = `${machineLine}: the 16-bit GPU form needs about ${gb(g?.gpuMemoryBytes ?? 0)} of graphics memory; the small GPU form (${gb(small.diskBytes)}, about ${gb(small.gpuMemoryBytes)} on the card) fits and runs there.`;
  } else if (laptop?.fits) {
    recommended = 'cpu';
    const why = gpu ? 'it fits for sure and runs on the graphics card too' : 'it fits and answers fastest on a processor';
    reason = `${machineLine}: the laptop form (${gb(laptop.diskBytes)} on disk, about ${gb(laptop.memoryBytes)} of memory) is the one to make, as ${why}.`;
  } else {
    const fitting = choices.find((c) => c.fits);
    recommended = fitting?.preset ?? 'cpu';
    const chosen = by(recommended)!;
    reason = fitting
      ? `${machineLine}: the ${chosen.title.toLowerCase()} form is the one that fits.`
      : `${machineLine}: even the smallest form does not fit well (${chosen.problem?.replace(/\.$/, '').replace(/^./, (c) => c.toLowerCase())}). Free some disk or memory, or expect slow answers.`;
  }
  const machine: MachineSummary = {
    totalMemoryBytes: m.totalMemoryBytes,
    freeDiskBytes: m.freeDiskBytes,
    gpu: gpu ? { name: gpu.name, memoryBytes: gpu.memoryBytes ?? null } : null,
  };
  return { model, machine, choices, recommended, reason };
}
