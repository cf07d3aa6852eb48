// The input side: conversation -> prompt text, token ids, pixel values.
export { Tokenizer, type DecodeOptions, type StreamDecoder } from "./tokenizer.js";
export { ChatTemplate, loadChatTemplateSource, type RenderOptions } from "./chat-template.js";
export { roundHalfEven, smartResize, smartResizeVideo, type ImageResizeOptions, type VideoResizeOptions } from "./smart-resize.js";
export { resizeBicubic } from "./bicubic.js";
export { patchify, PATCH_DIM, PATCH_SIZE, MERGE_SIZE, TEMPORAL_PATCH_SIZE, IMAGE_NORMALIZE_LUT, VIDEO_NORMALIZE_LUT } from "./patchify.js";
export { decodeImage, loadImageFile, processImage, compositeOverWhite, type RgbImage, type ProcessedImage, type ImageProcessOptions } from "./image.js";
export { sampleFrameIndices, linspace, DEFAULT_VIDEO_FPS, type SamplingOptions } from "./frame-sampling.js";
export { format1f, timestampText, calculateTimestamps } from "./timestamps.js";
export { openVideo, fileSource, folderSource, framesSource, findFfmpeg, processVideo, type VideoSource, type VideoProcessOptions, type ProcessedVideo } from "./video.js";
export {
  Processor, readImageConfig, readVideoConfig, IMAGE_TOKEN, VIDEO_TOKEN, VISION_START, VISION_END,
  type ProcessOptions, type ProcessedInput, type ProcessedImages, type ProcessedVideos, type ImageConfig, type VideoConfig,
} from "./processor.js";
