#!/usr/bin/env node
// The edgetune CLI entry: dispatches `edgetune <command>` to runtime/cli/commands/*, loaded lazily so
// `edgetune classify` never pays for the quantizer or the camera code. Errors print one clear line
// (no stack unless EDGETUNE_DEBUG=1; credentials in URIs masked) and exit 1; bad usage exits 2. A
// closed stdout (`edgetune classify … | head`) ends the command quietly (exit 0), no EPIPE trace.

import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Command, CommandIO } from './args.js';
import { EdgetuneError, messageOf } from '../core/errors.js';
import { maskSecrets } from '../core/redact.js';
import { InterruptedError } from '../io/progress.js';

/** Command name → module exporting it (the export is named like the command, camel-cased). */
const COMMANDS: Record<string, () => Promise<Command>> = {
  classify: async () => (await import('./commands/classify.js')).classify,
  models: async () => (await import('./commands/models.js')).models,
  devices: async () => (await import('./commands/devices.js')).devices,
  bench: async () => (await import('./commands/bench.js')).bench,
  kiosk: async () => (await import('./commands/kiosk.js')).kiosk,
  watch: async () => (await import('./commands/watch.js')).watch,
  capture: async () => (await import('./commands/capture.js')).capture,
  quantize: async () => (await import('./commands/quantize.js')).quantize,
  finetune: async () => (await import('./commands/finetune.js')).finetune,
  eval: async () => (await import('./commands/eval.js')).evaluate,
  'augment-preview': async () => (await import('./commands/augment-preview.js')).augmentPreview,
  inspect: async () => (await import('./commands/inspect.js')).inspect,
  card: async () => (await import('./commands/card.js')).card,
  import: async () => (await import('./commands/import.js')).importModel,
  export: async () => (await import('./commands/export.js')).exportModel,
  serve: async () => (await import('./commands/serve.js')).serve,

};

function mainUsage(summaries: Record<string, string>): string {
  const rows = Object.entries(summaries).map(([n, s]) => `  ${n.padEnd(16)} ${s}`);
  return `Usage: edgetune <command> [options]   (edgetune <command> --help for details)

Commands:
${rows.join('\n')}

Environment:
  EDGETUNE_MODEL_PATH  directories searched for model files, ':'-separated (default: none; then the cache)
  EDGETUNE_CACHE       download cache (default ~/.cache/edgetune)
  EDGETUNE_OFFLINE=1   never download
  EDGETUNE_DEVICE_PROFILE  force a device profile
  EDGETUNE_TOKEN       token required for POST requests to \`watch --serve\` (and for every request
                       to \`watch --serve\` / \`kiosk\` / \`serve\` bound to a non-loopback address);
                       sent as "Authorization: Bearer" to a model URL (--model http://…/v2/models/NAME)
  EDGETUNE_DEBUG=1     stack traces and onnxruntime's own logs
`;
}

/**
 * The first argument that was not valid UTF-8 on the command line (Node decodes such bytes as U+FFFD,
 * so a file name would silently become another name), as `argument N ("…")`, or undefined.
 */
export function nonUtf8Argument(argv: readonly string[]): string | undefined {
  const i = argv.findIndex((a) => a.includes('\uFFFD'));
  return i < 0 ? undefined : `argument ${i + 1} (${JSON.stringify(argv[i])})`;
}

export async function main(argv: string[], io: CommandIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const bad = nonUtf8Argument(argv);
  if (bad) {
    io.stderr.write(`edgetune: ${bad} is not valid UTF-8 (the bytes shown as \uFFFD): edgetune reads names as UTF-8, and reading this one would open or write another file; rename it to UTF-8 (e.g. convmv -f latin1 -t utf8)\n`);
    return 2;
  }
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    const summaries: Record<string, string> = {};
    for (const [n, load] of Object.entries(COMMANDS)) summaries[n] = (await load()).summary;
    io.stdout.write(mainUsage(summaries));
    return name ? 0 : 2;
  }
  if (name === '--version') {
    io.stdout.write('0.1.0\n');
    return 0;
  }
  const load = COMMANDS[name];
  if (!load) {
    io.stderr.write(`edgetune: unknown command "${name}": expected one of ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  const cmd = await load();
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(cmd.usage + '\n');
    return 0;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    if (process.env.EDGETUNE_DEBUG) io.stderr.write(`${maskSecrets(String((err as Error).stack ?? err))}\n`);
    // a command's own usage errors start with its name ("classify: no input images given"): said once
    // (only those: a file's error may start with a file named like the command)
    const message = messageOf(err);
    const usageError = err instanceof EdgetuneError && err.code === 'EARG' && err.subject === undefined;
    io.stderr.write(`edgetune ${name}: ${maskSecrets(usageError && message.startsWith(`${name}: `) ? message.slice(name.length + 2) : message)}\n`);
    if (err instanceof InterruptedError) return err.exitCode;
    return err instanceof EdgetuneError && err.code === 'EARG' ? 2 : 1;
  }
}

/**
 * Whoever reads our stdout went away (`| head`): end quietly. A command that stops on its own when
 * stdout closes (watch) adds its own 'error' listener, and then this one leaves it to it.
 */
export function quietOnClosedStdout(stdout: NodeJS.WriteStream = process.stdout): void {
  const onError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') {
      process.stderr.write(`edgetune: cannot write to stdout: ${err.message}\n`);
      process.exit(1);
    }
    if (stdout.listenerCount('error') > 1) return;
    process.exit(0);
  };
  stdout.on('error', onError);
}

/**
 * Longest command line (bytes of /proc/self/cmdline: every argument with its NUL, node and the script
 * included) that is safe with the default 8 MiB stack. onnxruntime-node 1.30.0 (Linux x64) reads
 * /proc/self/cmdline when it creates a session and walks it recursively (~3 native frames per byte):
 * from 28 961 bytes on (measured, node 20.20.2, `ulimit -s 8192`) the main thread's stack overflows
 * and the process dies with SIGSEGV (rc 139) and nothing printed. The limit leaves a margin and grows
 * with the stack limit (`ulimit -s`); none applies with an unlimited stack or where there is no
 * /proc/self/cmdline (other systems do not have the fault).
 */
export const COMMAND_LINE_LIMIT_8MIB = 24_576;

/** The error for a command line onnxruntime cannot survive, or null; read before onnxruntime loads. */
export function commandLineTooLong(): string | null {
  let size: number;
  let stackBytes = 8 * 1024 * 1024;
  try {
    size = readFileSync('/proc/self/cmdline').length;
  } catch {
    return null;
  }
  try {
    const m = /^Max stack size\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    if (m?.[1] === 'unlimited') return null;
    if (m && Number.isFinite(Number(m[1]))) stackBytes = Number(m[1]);
  } catch {
    // keep the default stack size
  }
  const limit = Math.floor((COMMAND_LINE_LIMIT_8MIB * stackBytes) / (8 * 1024 * 1024));
  if (size <= limit) return null;
  return (
    `the command line is ${size} bytes, over the limit of ${limit}: onnxruntime crashes (stack overflow) ` +
    `reading a longer one; pass a folder instead of many files, or raise the stack limit (ulimit -s)`
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href || process.argv[1]?.endsWith('/edgetune')) {
  quietOnClosedStdout();
  const tooLong = commandLineTooLong();
  if (tooLong) {
    process.stderr.write(`edgetune: ${tooLong}\n`);
    process.exit(2);
  }
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      process.stderr.write(`edgetune: ${maskSecrets(messageOf(err))}\n`);
      process.exitCode = 1;
    },
  );
}
