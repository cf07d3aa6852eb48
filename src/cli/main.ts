// The qwen3-vl command line: a thin shell over the library. User errors print one line,
// never a stack trace.
import { QwenError } from "../errors.js";
import { benchCommand } from "./bench.js";
import { chatCommand } from "./chat.js";
import { generateCommand } from "./generate.js";
import { infoCommand } from "./info.js";
import { serveCommand } from "./serve.js";

export const USAGE = `qwen3-vl: Qwen3-VL vision-language models in TypeScript

Usage:
  qwen3-vl generate (--messages FILE.json | --prompt TEXT [--image PATH]... [--video PATH]...)
                    [--model DIR|REPO] [--tools FILE.json]
                    [--max-new-tokens N] [--greedy] [--temperature T] [--top-k K] [--top-p P]
                    [--seed S] [--stop TEXT] [--draw OUT.png] [--json]
      One answer for a conversation file (Hugging Face / OpenAI message shape; media
      paths relative to the file). --json prints {ids, text, content, reasoning,
      tool_calls, prompt_tokens, ...} on one line. --draw parses bbox_2d/point_2d
      in the answer (0-1000 coordinates) and saves the first image with them drawn.

  qwen3-vl chat [--model DIR|REPO] [--system TEXT] [--greedy] [--temperature T] [--seed S]
                [--max-new-tokens N]          (alias: run)
      Interactive multi-turn chat with streaming answers; /image PATH and /video PATH [FPS]
      attach media to the next message; /system, /reset, /help, /exit. Reads one line per
      message when stdin is piped.

  qwen3-vl info [--model DIR|REPO] [--json]
      What a checkpoint is: dense/MoE, parameters (text/vision), layers, hidden sizes,
      heads, head_dim, experts, vocab, tied head, tensor dtypes, bytes on disk, shards.

  qwen3-vl serve [--model DIR|REPO] [--host H] [--port P]
      An OpenAI-compatible HTTP server (/v1/chat/completions with streaming, /v1/models).

  qwen3-vl bench [--config 2b|4b|8b|30b-a3b] [--formats bf16,q8,q4] [--threads N]
                 [--repeat N] [--layers N] [--json] [--compare FILE]
      wasm backend speed on random weights with a real model's shapes: decode and
      prefill tok/s, vision encode ms, time to first token, peak RSS, weight bytes.

  qwen3-vl help                 this text
  qwen3-vl COMMAND --help       details of one command (generate, chat, info, serve)

--model takes a checkpoint directory or a Hugging Face repo id (e.g.
Qwen/Qwen3-VL-2B-Instruct, downloaded once into the hub cache). Without --model:
$QWEN3VL_MODEL, else a small demo model with random weights (real tokenizer and chat
template; answers are noise) created on first use in $QWEN3VL_HOME (~/.cache/qwen3-vl).
`;

export type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  generate: generateCommand,
  chat: chatCommand,
  run: chatCommand,
  info: infoCommand,
  serve: serveCommand,
  bench: benchCommand,
};

export function registerCommand(name: string, cmd: Command): void {
  COMMANDS[name] = cmd;
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === "help" || cmd === "--help" || cmd === "-h") {
    process.stdout.write(USAGE);
    return 0;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    process.stderr.write(`qwen3-vl: unknown command "${cmd}"\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (e) {
    if (e instanceof QwenError || (e as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" || (e as { code?: string }).code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
      process.stderr.write(`qwen3-vl ${cmd}: ${(e as Error).message}\n`);
      return 1;
    }
    throw e;
  }
}
