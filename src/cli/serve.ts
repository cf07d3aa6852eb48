// `qwen3-vl serve`: the OpenAI-compatible HTTP server.
import { parseArgs } from "node:util";
import { QwenError } from "../errors.js";
import { createOpenAIServer } from "../server/openai.js";
import { loadModelFromFlags, MODEL_FLAGS, MODEL_HELP } from "./model-flags.js";

export const SERVE_HELP = `qwen3-vl serve [--model DIR|REPO] [--host 127.0.0.1] [--port 8080] [--name NAME]

${MODEL_HELP}

An OpenAI-compatible server: POST /v1/chat/completions (messages with text, image_url and
video items; "stream": true for server-sent events; tools; temperature, top_p, top_k,
min_p, presence/frequency/repetition penalties, seed, stop, max_tokens), GET /v1/models,
GET /health. Requests are answered one at a time. Relative media paths resolve against the
current folder.
`;

export async function serveCommand(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { ...MODEL_FLAGS, host: { type: "string" }, port: { type: "string" }, name: { type: "string" }, help: { type: "boolean" } },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(SERVE_HELP);
    return 0;
  }
  const port = Number(values.port ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new QwenError(`--port expects 0-65535, got "${values.port}"`);
  const host = values.host ?? "127.0.0.1";
  const vl = await loadModelFromFlags(values);
  const server = createOpenAIServer(vl, values.name ? { modelName: values.name } : {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) => reject(new QwenError(`cannot listen on ${host}:${port}: ${e.code ?? e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  process.stderr.write(`qwen3-vl: serving ${vl.dir} at http://${host}:${typeof addr === "object" && addr ? addr.port : port}/v1\n`);
  await new Promise<void>((resolve) => {
    const stop = () => server.close(() => resolve());
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  return 0;
}
