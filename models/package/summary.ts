/**
 * Human-readable summaries of a package manifest for `owlery inspect` and the convert command:
 * model shape, sizes per graph, quantization per part and verification results.
 */
import type { ComponentQuantization, DetailedComponent, PackageManifest, VerificationReport } from './manifest.ts';

/** Size with binary units, one decimal. */
export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

const PART_NAMES: Record<DetailedComponent, string> = { vision: 'vision', llm: 'llm', embed: 'embed', lmHead: 'lm_head' };

/** One line per part: precision, storage and compute. */
export function describeQuantization(m: PackageManifest): string[] {
  const detail = m.quantizationDetail;
  if (!detail) {
    return [`vision ${m.quantization.vision}, llm ${m.quantization.llm}, embed ${m.quantization.embed} (no detail recorded)`];
  }
  return (Object.keys(PART_NAMES) as DetailedComponent[]).map((k) => `${PART_NAMES[k].padEnd(8)} ${describePart(detail[k])}`);
}

function describePart(d: ComponentQuantization): string {
  const how = d.method === 'matmulnbits'
    ? `MatMulNBits ${d.bits}-bit, block ${d.blockSize}, ${d.zeroPoints === 'uint8' ? 'uint8 zero points' : 'symmetric'}, accuracy_level ${d.accuracyLevel}`
    : d.method === 'gather-blockwise'
      ? `${d.bits}-bit block ${d.blockSize} table, ${d.zeroPoints === 'uint8' ? 'uint8 zero points' : 'symmetric'}, dequantized after Gather`
      : `${d.weightType} weights`;
  const compute = d.compute === 'float16' ? 'float16 on GPU providers (float32 on CPU)' : d.compute;
  return `${d.precision.padEnd(5)} ${how}; compute ${compute}; ${d.tensors} tensor${d.tensors === 1 ? '' : 's'}`;
}

/** Verification results in a few lines. */
export function describeVerification(v: VerificationReport | undefined): string[] {
  if (!v) return ['not verified (converted with --no-verify)'];
  const lines = [v.probeSkipped
    ? `probe run skipped: ${v.probeSkipped} (${v.at})`
    : `${v.ok ? 'ok' : 'FAILED'}: probe ran (${v.probe.promptTokens} prompt tokens + image, ${v.probe.decodeSteps} decode steps) at ${v.at}`];
  const a = v.agreement;
  if (!a) {
    lines.push('agreement with float32: not measured (float32 package, or no reference)');
  } else if (a.method === 'end-to-end') {
    lines.push(
      `agreement with float32 (end-to-end): image embeddings cosine ${a.imageEmbedsCosine?.toFixed(6)} (lowest token ${a.imageEmbedsMinTokenCosine?.toFixed(6)})`,
      `  next-token top-1 agreement ${((a.top1Agreement ?? 0) * 100).toFixed(1)}% over ${a.steps} steps, logits cosine ${a.logitsCosine?.toFixed(6)}`,
    );
  } else {
    lines.push(`agreement with float32 (layer-wise, ${a.layers?.length ?? 0} sampled linears):`);
    for (const l of a.layers ?? []) lines.push(`  ${l.tensor} [${l.precision}]: cosine ${l.cosine.toFixed(6)}, relative error ${l.relError.toExponential(2)}`);
  }
  return lines;
}

/** The whole `owlery inspect` text. */
export function describePackage(m: PackageManifest): string {
  const c = m.config;
  const size = (names: string[]): number => m.files.filter((f) => names.includes(f.path)).reduce((s, f) => s + f.size, 0);
  const total = m.files.reduce((s, f) => s + f.size, 0);
  const srcTotal = m.source.files.reduce((s, f) => s + f.size, 0);
  const lines = [
    `${m.name} (${m.id})`,
    `format ${m.format} v${m.formatVersion}, converter ${m.converterVersion}, created ${m.createdAt}`,
    `source: ${m.source.format}, ${m.source.files.length} file${m.source.files.length === 1 ? '' : 's'}, ${humanBytes(srcTotal)}`,
    `model: LLaMA-2 decoder ${c.llm.numLayers} layers, hidden ${c.llm.hiddenSize}, ${c.llm.numHeads} heads (${c.llm.numKvHeads} kv), vocab ${c.llm.vocabSize}; ` +
      `ViT ${c.vision.numLayers} layers, hidden ${c.vision.hiddenSize}, image ${c.vision.imageSize}/${c.vision.patchSize}; ` +
      `abstractor ${c.abstractor.numLayers} layers, ${c.abstractor.numQueries} queries (${c.imageTokens} image tokens)`,
    '',
    `size: ${humanBytes(total)} in ${m.files.length} files`,
  ];
  for (const g of ['vision', 'embed', 'decoder'] as const) {
    const e = m.graphs[g];
    lines.push(`  ${`${g}.onnx`.padEnd(13)} ${humanBytes(size([e.file, e.data])).padStart(10)}`);
  }
  const graphFiles = new Set(Object.values(m.graphs).flatMap((e) => [e.file, e.data]));
  lines.push(`  ${'other files'.padEnd(13)} ${humanBytes(total - size([...graphFiles])).padStart(10)}`);
  lines.push('', `quantization${m.preset ? ` (preset ${m.preset})` : ''}:`, ...describeQuantization(m).map((l) => `  ${l}`));
  lines.push('', 'verification:', ...describeVerification(m.verification).map((l) => `  ${l}`));
  return lines.join('\n');
}
