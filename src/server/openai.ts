// An OpenAI-compatible HTTP server over the library: POST /v1/chat/completions (JSON or
// server-sent events when "stream": true), GET /v1/models, GET /health. One model, one
// generation at a time (requests queue), so answers are reproducible and memory bounded.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { QwenError } from "../errors.js";
import type { ChatOptions, ChatResult, Qwen3VL } from "../pipeline.js";

export interface ServerOptions {
  /** Name reported in /v1/models and responses (default: the model folder). */
  modelName?: string;
  /** Largest accepted request body in bytes (default 64 MiB: images arrive as data URLs). */
  maxBodyBytes?: number;
  /** Folder that relative media paths in requests resolve against (default: the current one). */
  baseDir?: string;
  /** Largest max_tokens a request may ask for (default 32768). */
  maxNewTokensLimit?: number;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly type = "invalid_request_error", readonly param: string | null = null) {
    super(message);
  }
}

function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        reject(new HttpError(413, `request body is larger than ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function num(body: Record<string, unknown>, key: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || (opts.integer && !Number.isInteger(v))) {
    throw new HttpError(400, `"${key}" must be ${opts.integer ? "an integer" : "a number"}`, "invalid_request_error", key);
  }
  if ((opts.min !== undefined && v < opts.min) || (opts.max !== undefined && v > opts.max)) {
    throw new HttpError(400, `"${key}" must be between ${opts.min ?? "-inf"} and ${opts.max ?? "inf"}, got ${v}`, "invalid_request_error", key);
  }
  return v;
}

/** Maps an OpenAI chat request onto library options (validating every field it uses). */
export function requestToOptions(body: Record<string, unknown>, limit: number): { messages: unknown[]; options: ChatOptions; stream: boolean } {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new HttpError(400, `"messages" must be a non-empty list`, "invalid_request_error", "messages");
  const o: ChatOptions = {};
  const set = <K extends keyof ChatOptions>(k: K, v: ChatOptions[K] | undefined) => { if (v !== undefined) o[k] = v; };
  set("maxNewTokens", num(body, "max_completion_tokens", { integer: true, min: 1, max: limit }) ?? num(body, "max_tokens", { integer: true, min: 1, max: limit }));
  set("temperature", num(body, "temperature", { min: 0, max: 100 }));
  set("topP", num(body, "top_p", { min: 0, max: 1 }));
  set("topK", num(body, "top_k", { integer: true, min: 0 }));
  set("minP", num(body, "min_p", { min: 0, max: 1 }));
  set("presencePenalty", num(body, "presence_penalty", { min: -2, max: 100 }));
  set("frequencyPenalty", num(body, "frequency_penalty", { min: -2, max: 100 }));
  set("repetitionPenalty", num(body, "repetition_penalty", { min: 0 }));
  set("seed", num(body, "seed", { integer: true, min: 0 }));
  if (body.temperature === 0) o.greedy = true;
  const stop = body.stop;
  if (typeof stop === "string") o.stop = [stop];
  else if (Array.isArray(stop) && stop.every((s) => typeof s === "string")) o.stop = stop as string[];
  else if (stop !== undefined && stop !== null) throw new HttpError(400, `"stop" must be a string or a list of strings`, "invalid_request_error", "stop");
  if (body.tools !== undefined && body.tools !== null) {
    if (!Array.isArray(body.tools)) throw new HttpError(400, `"tools" must be a list`, "invalid_request_error", "tools");
    o.tools = body.tools;
  }
  if (body.n !== undefined && body.n !== 1) throw new HttpError(400, `only "n": 1 is supported`, "invalid_request_error", "n");
  return { messages, options: o, stream: body.stream === true };
}

function toolCallsOut(r: ChatResult) {
  return r.toolCalls.filter((t) => t.ok).map((t, i) => ({
    id: `call_${i}`,
    type: "function",
    function: { name: (t as { name: string }).name, arguments: JSON.stringify((t as { arguments: unknown }).arguments) },
  }));
}

function finishReason(r: ChatResult): string {
  if (r.toolCalls.some((t) => t.ok)) return "tool_calls";
  return r.finishReason === "length" ? "length" : "stop";
}

export function createOpenAIServer(vl: Qwen3VL, opts: ServerOptions = {}): Server {
  const modelName = opts.modelName ?? vl.dir.split(/[\\/]/).filter(Boolean).pop() ?? "qwen3-vl";
  const maxBody = opts.maxBodyBytes ?? 64 * 1024 * 1024;
  const limit = opts.maxNewTokensLimit ?? 32768;
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };
  let counter = 0;

  const chat = async (req: IncomingMessage, res: ServerResponse) => {
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(await readBody(req, maxBody)) as Record<string, unknown>;
    } catch (e) {
      if (e instanceof HttpError) throw e;
      throw new HttpError(400, `request body is not valid JSON: ${(e as Error).message}`);
    }
    if (!body || typeof body !== "object") throw new HttpError(400, "request body must be a JSON object");
    const { messages, options, stream } = requestToOptions(body, limit);
    if (opts.baseDir) options.baseDir = opts.baseDir;
    const ac = new AbortController();
    res.on("close", () => { if (!res.writableFinished) ac.abort(); });
    options.signal = ac.signal;
    const id = `chatcmpl-${Date.now().toString(36)}${(counter++).toString(36)}`;
    const created = Math.floor(Date.now() / 1000);
    if (!stream) {
      const r = await serial(() => vl.chat(messages, options));
      const tc = toolCallsOut(r);
      sendJson(res, 200, {
        id, object: "chat.completion", created, model: modelName,
        choices: [{
          index: 0,
          message: { role: "assistant", content: r.content, ...(r.reasoning !== null ? { reasoning_content: r.reasoning } : {}), ...(tc.length ? { tool_calls: tc } : {}) },
          finish_reason: finishReason(r),
        }],
        usage: { prompt_tokens: r.promptTokens, completion_tokens: r.ids.length, total_tokens: r.promptTokens + r.ids.length },
        system_fingerprint: `seed-${r.seed}`,
      });
      return;
    }
    await serial(async () => {
      // Prepare (and validate) before committing to a 200 event stream.
      const input = await vl.prepare(messages, options);
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      const event = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
        res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model: modelName, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`);
      event({ role: "assistant", content: "" }, null);
      for await (const d of vl.generateFrom(input, options)) {
        if (d.type === "reasoning") event({ reasoning_content: d.text }, null);
        else if (d.type === "content") event({ content: d.text }, null);
        else {
          const tc = toolCallsOut(d.result);
          if (tc.length) event({ tool_calls: tc.map((t, index) => ({ index, ...t })) }, null);
          event({}, finishReason(d.result), {
            usage: { prompt_tokens: d.result.promptTokens, completion_tokens: d.result.ids.length, total_tokens: d.result.promptTokens + d.result.ids.length },
          });
        }
      }
      res.end("data: [DONE]\n\n");
    });
  };

  return createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = `${req.method} ${url.pathname.replace(/\/+$/, "")}`;
    const handle = async () => {
      if (route === "GET /health") return sendJson(res, 200, { status: "ok" });
      if (route === "GET /v1/models") {
        return sendJson(res, 200, { object: "list", data: [{ id: modelName, object: "model", created: 0, owned_by: "qwen3-vl" }] });
      }
      if (route === "POST /v1/chat/completions") return chat(req, res);
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`, "not_found_error");
    };
    handle().catch((e: unknown) => {
      const err = e instanceof HttpError ? e : e instanceof QwenError ? new HttpError(400, e.message) : new HttpError(500, `internal error: ${(e as Error).message}`, "server_error");
      if (err.status === 500) process.stderr.write(`qwen3-vl serve: ${(e as Error).stack ?? String(e)}\n`);
      if (res.headersSent) {
        res.end(`data: ${JSON.stringify({ error: { message: err.message, type: err.type } })}\n\n`);
        return;
      }
      sendJson(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: null } });
    });
  });
}
