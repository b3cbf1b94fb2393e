/**
 * Which form of the 7B model fits a machine: sizes from the converter's own graphs (the official
 * 7B config, no weights read), and the recommendation for machines with and without a GPU, with
 * little memory or little disk, each with the reason in words.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { estimateForms, languageModelParameters, modelDisplayName, sizeLabel } from '../../../models/forms.ts';
import type { FormEstimate } from '../../../models/forms.ts';
import { synthConfigJson } from '../../../models/synth/presets.ts';
import { recommendForm } from '../../../src-main/models-service/forms.ts';
import type { MachineFacts } from '../../../src-main/models-service/forms.ts';

const GB = 1e9;
const config7b = synthConfigJson('7b').config;
let estimates: FormEstimate[];

beforeAll(async () => {
  estimates = await estimateForms(config7b);
});

function machine(over: Partial<MachineFacts> = {}): MachineFacts {
  return { totalMemoryBytes: 16 * GB, freeMemoryBytes: 8 * GB, freeDiskBytes: 200 * GB, gpu: null, ...over };
}

describe('form sizes', () => {
  it('names the model after LLaMA-2 7B and the form', () => {
    expect(languageModelParameters(config7b)).toBe(6_738_415_616);
    expect(sizeLabel(config7b)).toBe('7B');
    expect(modelDisplayName(config7b, 'cpu')).toBe('mPLUG-Owl2 7B · 4-bit');
    expect(modelDisplayName(config7b, 'gpu')).toBe('mPLUG-Owl2 7B · 16-bit');
    expect(modelDisplayName(config7b, 'gpu-int4')).toBe('mPLUG-Owl2 7B · 4-bit GPU');
    expect(modelDisplayName(config7b, 'reference')).toBe('mPLUG-Owl2 7B · full precision');
    expect(modelDisplayName(config7b, 'custom')).toBe('mPLUG-Owl2 7B · custom precision');
  });

  it('sizes the 7B forms as the converter writes them (docs/performance.md: ≈5 GB and ≈7 GB for the laptop form)', () => {
    const by = Object.fromEntries(estimates.map((e) => [e.preset, e]));
    expect(Math.round(by.cpu!.diskBytes / GB)).toBe(5);
    expect(by.cpu!.memoryBytes / GB).toBeGreaterThan(6);
    expect(by.cpu!.memoryBytes / GB).toBeLessThan(8);
    expect(Math.round(by.gpu!.diskBytes / GB)).toBe(16);
    // The small GPU form: a 4-bit language model that fits a 6–8 GB card.
    expect(by['gpu-int4']!.diskBytes).toBeLessThan(by.gpu!.diskBytes / 2);
    expect(by['gpu-int4']!.gpuMemoryBytes / GB).toBeLessThan(8);
    expect(estimates.map((e) => e.preset)).toEqual(['cpu', 'gpu-int4', 'gpu', 'reference']);
    expect(Math.round(by.reference!.diskBytes / GB)).toBe(33);
    // On a processor the 16-bit weights are widened to 32-bit: as much memory as full precision.
    expect(Math.abs(by.gpu!.memoryBytes - by.reference!.memoryBytes) / by.reference!.memoryBytes).toBeLessThan(0.01);
    expect(by.gpu!.gpuMemoryBytes).toBeLessThan(by.reference!.gpuMemoryBytes);
    // 7B packages are too large for an end-to-end check against float32: no scratch space.
    expect(by.cpu!.convertBytes).toBe(by.cpu!.diskBytes);
  });
});

describe('recommendation', () => {
  const recommend = (m: MachineFacts) => recommendForm('mPLUG-Owl2 7B', estimates, m);

  it('a laptop with 16 GB and no GPU: the laptop form, the others too big for its memory', () => {
    const r = recommend(machine());
    expect(r.recommended).toBe('cpu');
    expect(r.reason).toBe(
      'This computer has 16 GB of memory, 200 GB of free disk and no graphics card Owlery can use: the laptop form (4.8 GB on disk, about 7.0 GB of memory) is the one to make, as it fits and answers fastest on a processor.',
    );
    expect(r.choices.map((c) => [c.preset, c.runsOn, c.speed, c.fits])).toEqual([
      ['cpu', 'cpu', 'fast', true],
      ['gpu-int4', 'cpu', 'medium', expect.any(Boolean)],
      ['gpu', 'cpu', 'slow', false],
      ['reference', 'cpu', 'slow', false],
    ]);
    expect(r.choices[2]!.problem).toBe('Needs about 45 GB of memory; this computer has 16 GB.');
    expect(r.machine).toEqual({ totalMemoryBytes: 16 * GB, freeDiskBytes: 200 * GB, gpu: null });
  });

  it('a 24 GB graphics card: the GPU form, which runs on the card', () => {
    const r = recommend(machine({ totalMemoryBytes: 32 * GB, gpu: { name: 'NVIDIA RTX 4090', memoryBytes: 24 * GB } }));
    expect(r.recommended).toBe('gpu');
    expect(r.reason).toMatch(/a graphics card \(NVIDIA RTX 4090\) with 24 GB: the GPU form \(16 GB\) fits on the card and answers fastest\.$/);
    expect(r.choices.map((c) => [c.preset, c.runsOn, c.speed])).toEqual([
      ['cpu', 'cpu', 'fast'],
      ['gpu-int4', 'gpu', 'fast'],
      ['gpu', 'gpu', 'fast'],
      ['reference', 'cpu', 'slow'],
    ]);
    expect(r.machine.gpu).toEqual({ name: 'NVIDIA RTX 4090', memoryBytes: 24 * GB });
  });

  it('an 8 GB card: the small GPU form, which fits on it', () => {
    const r = recommend(machine({ gpu: { name: 'GeForce 3070', memoryBytes: 8 * GB } }));
    expect(r.recommended).toBe('gpu-int4');
    expect(r.reason).toMatch(/: the 16-bit GPU form needs about 20 GB of graphics memory; the small GPU form \(.* on the card\) fits and runs there\.$/);
  });

  it('a 4 GB card, or a card whose memory is unknown: the laptop form, safe either way', () => {
    for (const gpu of [{ name: 'GeForce 1650', memoryBytes: 4 * GB }, { name: 'NVIDIA CUDA' }]) {
      const r = recommend(machine({ gpu }));
      expect(r.recommended, gpu.name).toBe('cpu');
      expect(r.reason, gpu.name).toMatch(/is the one to make, as it fits for sure and runs on the graphics card too\.$/);
    }
    expect(recommend(machine({ gpu: { name: 'NVIDIA CUDA' } })).reason).toContain('a graphics card (NVIDIA CUDA) whose memory is not known');
    // A software rasterizer is no GPU.
    expect(recommend(machine({ gpu: { name: 'llvmpipe', memoryBytes: 64 * GB, software: true } })).machine.gpu).toBeNull();
  });

  it('too little memory or disk even for the laptop form: still the laptop form, saying what is short', () => {
    const r = recommend(machine({ totalMemoryBytes: 4 * GB, freeDiskBytes: 3 * GB }));
    expect(r.recommended).toBe('cpu');
    expect(r.choices.every((c) => !c.fits)).toBe(true);
    expect(r.choices[0]!.problem).toBe('Needs about 4.8 GB of free disk; 3.0 GB is free, and needs about 7.0 GB of memory; this computer has 4.0 GB.');
    expect(r.reason).toMatch(/: even the smallest form does not fit well \(needs about 4\.8 GB of free disk; .*\)\. Free some disk or memory, or expect slow answers\.$/);
  });
});
