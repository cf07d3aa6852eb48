// The model used when --model is not given.
import { QwenError } from "../errors.js";

export async function defaultModel(): Promise<string> {
  const env = process.env.QWEN3VL_MODEL;
  if (env) return env;
  throw new QwenError("no --model given (a checkpoint directory or a Hugging Face repo id such as Qwen/Qwen3-VL-2B-Instruct)");
}
