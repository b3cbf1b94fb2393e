/**
 * The engine's public face: everything outside `src-main/engine` imports the engine from here
 * (lint-enforced, test/unit/import-graph.test.ts).
 *
 * - The engine process and its host: `EngineHost` starts the process, loads a package, generates
 *   (streaming events, cancellable) and answers the pipeline's stages; the request, option and
 *   event types are the protocol's.
 * - The in-process pipeline (`Owl2Engine`, its `Owl2Model` and the decoder's KV cache), for
 *   benchmarks and tools that measure the engine without a process boundary.
 * - The pure pieces callers need before a request: the chat template's marker placement and
 *   prompt rendering, the tokenizer and image preprocessing (the CLI's pipeline stages).
 * - Package verification (`verifyPackage`), which the converter gets injected.
 */
export { EngineHost, forkEngineProcess } from './engine-host.ts';
export type { EngineHostOptions, EngineProcess, EngineProcessHandlers, EngineProcessOptions, EngineSpawner, HostGenerateOptions, HostLoadOptions } from './engine-host.ts';
export type {
  CancelSignal, ChatMessage, EngineInfo, EngineLoadOptions, GenerateRequest, GenerateResult, ImageInput, WorkerRequest, WorkerResponse,
} from './protocol.ts';
export { Owl2Engine } from './mplug-owl2/engine.ts';
export { buildChatPrompt, placeImageMarkers, withInstructions } from './mplug-owl2/prompt.ts';
export type { ChatPromptOptions } from './mplug-owl2/prompt.ts';
export { parsePreprocessorConfig, preprocessImage } from './mplug-owl2/image-processing.ts';
export { decodeImage } from './image/decode.ts';
export { IMAGE_MARKER, LlamaTokenizer } from './tokenizer/llama-tokenizer.ts';
export { verifyPackage } from './verify.ts';
export { DecoderKvCache, decoderFeedTensor, runDecoderStep } from './mplug-owl2/kv-cache.ts';
export { Owl2Model } from './mplug-owl2/modeling.ts';
export { parseSentencePieceModel } from './tokenizer/sentencepiece-model.ts';
export { describePlacements, placementReport } from './gpu/placements.ts';
export { likelyWebGpuAdapter } from './gpu/adapter.ts';
