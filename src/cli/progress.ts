// A one-line progress bar on stderr, drawn only when stderr is a terminal.
export interface Progress {
  update(done: number, total: number): void;
  finish(): void;
}

export function progressBar(label: string, stream: NodeJS.WriteStream = process.stderr, format: (n: number) => string = String): Progress | undefined {
  if (!stream.isTTY) return undefined;
  let last = 0;
  let drawn = false;
  const start = Date.now();
  return {
    update(done, total) {
      const now = Date.now();
      if (drawn && now - last < 100 && done < total) return;
      last = now;
      drawn = true;
      const frac = total > 0 ? Math.min(1, done / total) : 0;
      const width = 28;
      const fill = Math.round(frac * width);
      const secs = ((now - start) / 1000).toFixed(1);
      stream.write(`\r${label} [${"#".repeat(fill)}${"-".repeat(width - fill)}] ${format(done)}/${format(total)} ${secs}s`);
    },
    finish() {
      if (drawn) stream.write("\n");
      drawn = false;
    },
  };
}

export const formatBytes = (n: number): string =>
  n >= 1 << 30 ? `${(n / (1 << 30)).toFixed(2)} GiB` : n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
