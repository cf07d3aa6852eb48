// Public entry of the qwen3-vl package.
export { Qwen3VL, type ChatOptions, type ChatResult, type ChatDelta, type LoadModelOptions, type FinishReason } from "./pipeline.js";
export { Qwen3VLModel, Session, type ModelInput, type VisualInput } from "./model/qwen3-vl.js";
export { parseConfig, type Qwen3VLConfig } from "./model/config.js";
export { generate, argmax, eosFromGenerationConfig, type GenerateOptions, type GenerateResult } from "./generation/generate.js";
export { Sampler, type SamplingOptions } from "./generation/sampler.js";
export { splitThinking, ThinkingStreamSplitter } from "./generation/thinking.js";
export { parseToolCalls } from "./generation/tool-calls.js";
export { parseGrounding, parseGroundingToPixels, toPixelCoordinates, drawGrounding, savePng } from "./generation/grounding.js";
export { Processor } from "./processing/processor.js";
export { Tokenizer } from "./processing/tokenizer.js";
export { ReferenceBackend } from "./backends/reference/index.js";
export type { Backend, Tensor, Weight, WeightFormat, WeightSource } from "./tensor/backend.js";
export { openCheckpoint } from "./io/checkpoint.js";
export { resolveModel } from "./io/hub.js";
export { QwenError } from "./errors.js";
export { ensureDemoModel, demoModelDir } from "./io/demo-model.js";
