/**
 * seer's command line: `deno task cli <command> [options]`.
 * Each command lives beside the layer it drives; this file only dispatches.
 */
import { SeerError } from "./errors.ts";

type Command = {
  summary: string;
  run: (args: string[]) => Promise<void>;
};

const commands: Record<string, Command> = {
  // Commands register here: name → { summary, run }, each imported lazily so
  // one command's dependencies never slow down another's start.
  "train-image": {
    summary: "train the digit diffusion models or their classifier (resumable)",
    run: async (args) =>
      (await import("./image/cli.ts")).trainImageCommand(args),
  },
  image: {
    summary: "generate digits with the staged diffusion models into PNGs",
    run: async (args) => (await import("./image/cli.ts")).imageCommand(args),
  },
  generate: {
    summary: "generate text from a prompt (built-in model by default)",
    run: async (args) =>
      (await import("./cli/generate.ts")).generateCommand(args),
  },
};

function usage(): string {
  const rows = Object.entries(commands).map(([name, c]) =>
    `  ${name.padEnd(14)} ${c.summary}`
  );
  return [
    "usage: deno task cli <command> [options]   (--help after a command for its options)",
    "",
    "commands:",
    ...rows,
  ].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) {
    console.error(`seer: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    await command.run(rest);
    return 0;
  } catch (e) {
    if (e instanceof SeerError) {
      // Users get the message, not a stack trace: it says what to fix.
      console.error(`seer ${name}: ${e.message}`);
      return e.code === "invalid_argument" ? 2 : 1;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
