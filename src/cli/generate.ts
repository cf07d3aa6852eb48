// `qwen3-vl generate`: one answer for a messages file. With --json the output is one JSON
// object (a stable contract: ids, text, prompt_tokens, plus content/reasoning/tool_calls).
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { QwenError } from "../errors.js";
import { drawGrounding, parseGroundingToPixels, savePng, type GroundingItem } from "../generation/grounding.js";
import type { ChatOptions } from "../pipeline.js";
import { loadImageFile } from "../processing/image.js";
import { loadModelFromFlags, MODEL_FLAGS, MODEL_HELP } from "./model-flags.js";
import { progressBar } from "./progress.js";
import { applySamplingFlags, SAMPLING_FLAGS, SAMPLING_HELP } from "./sampling-flags.js";

export const GENERATE_HELP = `qwen3-vl generate: one answer for one conversation

  qwen3-vl generate --prompt "Describe this image." --image photo.jpg [--model DIR|REPO]
  qwen3-vl generate --messages conversation.json --json

Input (one of):
  --messages FILE.json      a list of messages, Hugging Face / Qwen or OpenAI shape; media
                            paths are relative to the file's folder
  --prompt TEXT             one user message, with --image PATH / --video PATH (repeatable;
                            a video is a file or a folder of frames)
Options:
${MODEL_HELP}
  --tools FILE.json         OpenAI-style function tools for the chat template
  --stop TEXT               stop before this text (repeatable)
${SAMPLING_HELP}
  --draw OUT.png            draw the answer's bbox_2d / point_2d on the first image
  --json                    print one JSON object: ids, text, content, reasoning, tool_calls,
                            prompt_tokens, completion_tokens, finish_reason, seed, model
`;

function readJson(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new QwenError(`cannot read ${what} file ${path}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new QwenError(`${what} file ${path} is not valid JSON: ${(e as Error).message}`);
  }
}


export async function generateCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      ...MODEL_FLAGS,
      messages: { type: "string" },
      prompt: { type: "string" },
      image: { type: "string", multiple: true },
      video: { type: "string", multiple: true },
      tools: { type: "string" },
      ...SAMPLING_FLAGS,
      stop: { type: "string", multiple: true },
      help: { type: "boolean", short: "h" },
      json: { type: "boolean" },
      draw: { type: "string" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(GENERATE_HELP);
    return 0;
  }
  let messages: unknown[];
  let baseDir = process.cwd();
  if (values.messages) {
    const m = readJson(resolve(values.messages), "messages");
    if (!Array.isArray(m)) throw new QwenError(`messages file ${values.messages} must hold a JSON list of messages`);
    messages = m;
    baseDir = dirname(resolve(values.messages));
  } else if (values.prompt !== undefined) {
    const media = [
      ...(values.image ?? []).map((p) => ({ type: "image", image: p })),
      ...(values.video ?? []).map((p) => ({ type: "video", video: p })),
    ];
    messages = [{ role: "user", content: media.length ? [...media, { type: "text", text: values.prompt }] : values.prompt }];
  } else {
    throw new QwenError("give --messages FILE.json, or --prompt TEXT (with --image PATH / --video PATH)");
  }
  const tools = values.tools ? readJson(resolve(values.tools), "tools") : undefined;
  if (tools !== undefined && !Array.isArray(tools)) throw new QwenError(`tools file ${values.tools} must hold a JSON list of tools`);

  const vl = await loadModelFromFlags(values);
  const o: ChatOptions = applySamplingFlags(values, { baseDir });
  if (tools) o.tools = tools;
  if (values.stop) o.stop = values.stop;
  const prefillBar = progressBar("prompt");
  if (prefillBar) o.onPrefillProgress = (d, t) => { prefillBar.update(d, t); if (d === t) prefillBar.finish(); };

  if (values.json) {
    const r = await vl.chat(messages, o);
    const grounding = values.draw ? await drawAnswer(r.content, messages, baseDir, resolve(values.draw)) : undefined;
    const out = {
      ids: r.ids, text: r.text, content: r.content, reasoning: r.reasoning,
      tool_calls: r.toolCalls.map((t) => (t.ok ? { name: t.name, arguments: t.arguments } : { error: t.error, raw: t.raw })),
      prompt_tokens: r.promptTokens, completion_tokens: r.ids.length, finish_reason: r.finishReason, seed: r.seed, model: vl.dir,
      ...(grounding ? { grounding } : {}),
    };
    process.stdout.write(JSON.stringify(out) + "\n");
    return 0;
  }
  let inReasoning = false;
  for await (const d of vl.chatStream(messages, o)) {
    if (d.type === "reasoning") {
      if (!inReasoning) { process.stdout.write("<think>\n"); inReasoning = true; }
      process.stdout.write(d.text);
    } else if (d.type === "content") {
      if (inReasoning) { process.stdout.write("\n</think>\n\n"); inReasoning = false; }
      process.stdout.write(d.text);
    } else {
      process.stdout.write("\n");
      for (const t of d.result.toolCalls) process.stdout.write(`[tool call] ${t.ok ? `${t.name} ${JSON.stringify(t.arguments)}` : `malformed: ${t.error}`}\n`);
      if (values.draw) {
        const items = await drawAnswer(d.result.content, messages, baseDir, resolve(values.draw));
        process.stderr.write(`drew ${items.length} grounding item(s) on ${values.draw}\n`);
      }
    }
  }
  return 0;
}

/** The first image of the conversation (a local path), resolved like the processor does. */
function firstImagePath(messages: unknown[], baseDir: string): string | null {
  for (const m of messages) {
    const content = (m as { content?: unknown }).content;
    if (!Array.isArray(content)) continue;
    for (const item of content as Record<string, unknown>[]) {
      let src: unknown = item?.["image"];
      if (src === undefined && item?.["image_url"] !== undefined) {
        const u = item["image_url"];
        src = typeof u === "string" ? u : (u as { url?: unknown })?.url;
      }
      if (typeof src !== "string") continue;
      if (src.startsWith("file://")) return new URL(src).pathname;
      if (/^(https?|data):/.test(src)) return null;
      return resolve(baseDir, src);
    }
  }
  return null;
}

/**
 * Parses bbox_2d / point_2d JSON in the answer, maps the 0-1000 coordinates to the first
 * image's pixels and saves the image with the boxes and points drawn as PNG.
 */
export async function drawAnswer(answer: string, messages: unknown[], baseDir: string, outPath: string): Promise<GroundingItem[]> {
  const imgPath = firstImagePath(messages, baseDir);
  if (!imgPath) throw new QwenError("--draw needs a conversation whose first image is a local file");
  if (resolve(imgPath) === resolve(outPath)) throw new QwenError(`--draw ${outPath} would overwrite the input image; choose another file`);
  const img = await loadImageFile(imgPath);
  const items = parseGroundingToPixels(answer, img.width, img.height);
  await savePng(outPath, drawGrounding(img, items));
  return items;
}
