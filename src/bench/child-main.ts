// Child process entry of the benchmark: `node child-main.js '<ChildOptions json>'` prints
// `BENCH_RESULT {json}` on success.
import { runChild, type ChildOptions } from "./child.js";

const opts = JSON.parse(process.argv[2] ?? "{}") as ChildOptions;
runChild(opts).then(
  (r) => {
    process.stdout.write(`BENCH_RESULT ${JSON.stringify(r)}\n`);
    process.exit(0);
  },
  (e) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
