// `edgetune serve <model|repository>...`: serve models over the Open Inference Protocol (KServe v2 / Triton HTTP),
// no camera. Parses options and calls serveModels (runtime/serve/server.ts); Ctrl-C stops.

import { EdgetuneError } from '../../core/errors.js';
import { interruptSignal } from '../../io/progress.js';
import { serveModels } from '../../serve/server.js';
import { intOption, listOption, parse, type Command } from '../args.js';
import { providersFrom, SESSION_OPTIONS, SESSION_USAGE } from '../common.js';
import { cardLayerFrom, CARD_OPTIONS, CARD_USAGE } from '../card-options.js';

const usage = `Usage: edgetune serve <model|repository>... [options]

Serve one or more models over the Open Inference Protocol (KServe v2 / Triton HTTP): Triton, KServe
clients and "edgetune classify --model http://HOST:PORT/v2/models/NAME" use it. Each model is served
as /v2/models/<name>, <name> being its registry id or its file's base name without extension. A Triton
model repository folder ("edgetune export --format triton" writes one) serves every entry, its highest
version, under the entry's name, as Triton does; an entry folder serves that entry.

Routes: GET /v2, /v2/health/live, /v2/health/ready, /v2/models/<name>[/versions/1], …/ready,
…/config (Triton's model configuration, the model card in parameters["edgetune.model"]);
POST …/infer (JSON tensors, Triton's binary tensor data and classification extensions); GET /metrics.

Options:
  --host <addr>       address to bind (default 127.0.0.1; 0.0.0.0 serves the network: then, with
                      EDGETUNE_TOKEN set, every request needs "Authorization: Bearer <token>")
  --port <n>          TCP port (default 8000, Triton's HTTP port; 0 picks a free one)
  --allow-host <names>  Host names served besides loopback and the bound address (comma-separated,
                      repeatable; other Host headers get 421: DNS rebinding protection)
  --max-body <MiB>    largest inference request body (default 256; 413 above it; a gzip or
                      deflate body counts inflated)
  --max-batch-size <n>  Triton's max_batch_size for models with a dynamic batch dimension: said in
                      /config, larger batches refused (default 8, as "edgetune export --format triton")
${SESSION_USAGE}

${CARD_USAGE}`;

export const serve: Command = {
  summary: 'serve models over the Open Inference Protocol (KServe v2 / Triton HTTP), no camera',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      'allow-host': { type: 'string', multiple: true },
      'max-body': { type: 'string' },
      'max-batch-size': { type: 'string' },
      ...SESSION_OPTIONS,
      ...CARD_OPTIONS,
    });
    if (!positionals.length) throw new EdgetuneError('EARG', `serve: no model given\n\n${usage}`);
    const port = intOption('port', v.port as string | undefined, 8000, 0, 65535);
    const maxBody = intOption('max-body', v['max-body'] as string | undefined, 256, 1, 4096);
    const say = (l: string) => io.stderr.write(`edgetune serve: ${l}\n`);
    const s = await serveModels(positionals, {
      ...providersFrom(v, io),
      overrides: await cardLayerFrom(v),
      host: v.host as string,
      port,
      allowHosts: ((v['allow-host'] as string[] | undefined) ?? []).flatMap((h) => listOption(h) ?? []),
      maxBodyBytes: maxBody * 1024 * 1024,
      maxBatchSize: intOption('max-batch-size', v['max-batch-size'] as string | undefined, 8, 1, 1024),
      log: say,
    });
    // Ctrl-C is handled before the lines that say so: a supervisor may signal as soon as it reads them
    const stop = interruptSignal();
    for (let i = 0; i < s.names.length; i++) io.stdout.write(`edgetune serve: ${s.url}v2/models/${encodeURIComponent(s.names[i]!)} (${s.classifiers[i]!.provider})\n`);
    io.stdout.write(`edgetune serve: serving ${s.names.length} model${s.names.length > 1 ? 's' : ''} at ${s.url} (Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    stop.dispose();
    await s.close();
    say('stopped');
    return 0;
  },
};
