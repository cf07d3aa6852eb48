// The qwen3-vl command line: a thin shell over the library. User errors print one line,
// never a stack trace.
import { QwenError } from "../errors.js";
import { generateCommand } from "./generate.js";

export const USAGE = `qwen3-vl: Qwen3-VL vision-language models in TypeScript

Usage:
  qwen3-vl generate --messages FILE.json [--model DIR|REPO] [--tools FILE.json]
                    [--max-new-tokens N] [--greedy] [--temperature T] [--top-k K] [--top-p P]
                    [--seed S] [--stop TEXT] [--json]
      One answer for a conversation file (Hugging Face / OpenAI message shape; media
      paths relative to the file). --json prints {ids, text, content, reasoning,
      tool_calls, prompt_tokens, ...} on one line.

  qwen3-vl help                 this text

--model takes a checkpoint directory or a Hugging Face repo id (e.g.
Qwen/Qwen3-VL-2B-Instruct, downloaded once into the hub cache).
`;

export type Command = (args: string[]) => Promise<number>;

const COMMANDS: Record<string, Command> = {
  generate: generateCommand,
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
