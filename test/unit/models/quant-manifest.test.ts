/**
 * Manifest additions for quantized packages: `preset`, `quantizationDetail` and `verification`
 * survive validation (and so `readPackage`), are checked when present, and stay optional for
 * packages written before them.
 */
import { describe, expect, it } from 'vitest';
import { quantizationDetail } from '../../../models/convert.ts';
import { parseOwl2Config } from '../../../models/owl2/config.ts';
import { PACKAGE_FORMAT_VERSION, validateManifest } from '../../../models/package/manifest.ts';
import { describePackage } from '../../../models/package/summary.ts';
import { resolvePlan } from '../../../models/quant/plan.ts';
import { DEFAULT_TINY_SIZES, owl2ConfigJson } from '../../../models/tiny/files.ts';
import { pyJson } from '../../../models/tiny/pyjson.ts';

const config = parseOwl2Config(JSON.parse(pyJson(owl2ConfigJson(DEFAULT_TINY_SIZES, 'float32'))));
const sha = 'a'.repeat(64);

function manifest(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: 'owlery-model-package',
    formatVersion: PACKAGE_FORMAT_VERSION,
    family: 'mplug-owl2',
    id: 'mplug-owl2-0123456789abcdef',
    name: 'tiny',
    converterVersion: '1.0.0',
    createdAt: '2026-01-01T00:00:00.000Z',
    source: { format: 'safetensors', files: [{ path: 'model.safetensors', size: 10, sha256: sha }] },
    config,
    quantization: { vision: 'int8', llm: 'int4', embed: 'int8' },
    graphs: Object.fromEntries(['vision', 'embed', 'decoder'].map((g) => [g, { file: `${g}.onnx`, data: `${g}.onnx.data`, inputs: [], outputs: [] }])),
    files: ['vision', 'embed', 'decoder'].flatMap((g) => [`${g}.onnx`, `${g}.onnx.data`]).map((path) => ({ path, size: 1 << 20, sha256: sha })),
    ...extra,
  };
}

const verification = {
  ok: true,
  at: '2026-01-01T00:00:01.000Z',
  probe: { image: 'synthetic', prompt: 'USER: <|image|>x ASSISTANT:', promptTokens: 19, decodeSteps: 8 },
  tokens: [1, 2, 3],
  agreement: { method: 'end-to-end', imageEmbedsCosine: 0.9999, imageEmbedsMinTokenCosine: 0.9998, top1Agreement: 0.875, steps: 8, logitsCosine: 0.997 },
};

describe('manifest quantization and verification fields', () => {
  it('keeps preset, quantizationDetail and verification through validation', () => {
    const detail = quantizationDetail(config, resolvePlan('cpu'));
    const m = validateManifest(JSON.parse(JSON.stringify(manifest({ preset: 'cpu', quantizationDetail: detail, verification }))));
    expect(m.preset).toBe('cpu');
    expect(m.quantizationDetail).toEqual(detail);
    expect(m.verification).toEqual(verification);
  });

  it('stays valid without them (packages written before quantization)', () => {
    const m = validateManifest(manifest());
    expect(m.quantizationDetail).toBeUndefined();
    expect(m.verification).toBeUndefined();
    expect(describePackage(m)).toMatch(/no detail recorded[\s\S]*not verified/);
  });

  it('rejects malformed detail and verification, naming the field', () => {
    const detail = quantizationDetail(config, resolvePlan('cpu'));
    const bad = JSON.parse(JSON.stringify(detail)) as Record<string, Record<string, unknown>>;
    bad.llm.precision = 'int3';
    expect(() => validateManifest(manifest({ quantizationDetail: bad }))).toThrow(/quantizationDetail\.llm\.precision/);
    const noHead = JSON.parse(JSON.stringify(detail)) as Record<string, unknown>;
    delete noHead.lmHead;
    expect(() => validateManifest(manifest({ quantizationDetail: noHead }))).toThrow(/quantizationDetail\.lmHead must be an object/);
    expect(() => validateManifest(manifest({ verification: { ...verification, agreement: { method: 'vibes' } } }))).toThrow(/agreement\.method/);
    expect(() => validateManifest(manifest({ verification: { ...verification, agreement: { ...verification.agreement, top1Agreement: 'high' } } })))
      .toThrow(/agreement\.top1Agreement must be a number/);
    expect(() => validateManifest(manifest({ verification: { ...verification, ok: 'yes' } }))).toThrow(/verification\.ok/);
  });

  it('describes the parts: tensors counted from the config', () => {
    const d = quantizationDetail(config, resolvePlan('cpu'));
    expect(d.llm.tensors).toBe(config.llm.numLayers * 9);
    expect(d.vision.tensors).toBe(config.vision.numLayers * 4 + config.abstractor.numLayers * 7 + 1);
    expect(d.lmHead).toMatchObject({ precision: 'int8', method: 'matmulnbits', bits: 8, zeroPoints: 'none', accuracyLevel: 4, compute: 'int8' });
    const g = quantizationDetail(config, resolvePlan('gpu'));
    expect(g.embed).toMatchObject({ method: 'float', weightType: 'float16', compute: 'float16' });
    const text = describePackage(validateManifest(manifest({ preset: 'cpu', quantizationDetail: d, verification })));
    expect(text).toMatch(/llm +int4 +MatMulNBits 4-bit, block 128, uint8 zero points, accuracy_level 4; compute int8; \d+ tensors/);
    expect(text).toMatch(/next-token top-1 agreement 87\.5% over 8 steps/);
    expect(text).toMatch(/decoder\.onnx +2\.0 MiB/);
  });
});
