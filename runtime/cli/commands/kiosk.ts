// `edgetune kiosk`: parses options and starts the kiosk server (runtime/kiosk/server.ts).

import { interruptSignal } from '../../io/progress.js';
import { startKiosk } from '../../kiosk/server.js';
import { intOption, listOption, parse, type Command, type CommandIO } from '../args.js';
import { providerNamesIn, resolveProviderName } from '../../core/providers.js';

const usage = `Usage: edgetune kiosk [options]

Serve the browser kiosk: live camera classification and teach-by-camera (train a new head in the
page), with onnxruntime-web on WebNN (NPU) → WebGPU → wasm. Open the printed address in a browser
(e.g. chromium --kiosk http://127.0.0.1:8080). Page options: ?ep=webgpu,wasm forces a provider order.

Options:
  --model <id|file>   registry id or .onnx path (default mobilenetv2-int8); fine-tuned exports work too
  --port <n>          TCP port (default 8080; 0 picks a free one)
  --host <addr>       address to bind (default 127.0.0.1; 0.0.0.0 to serve the network: then, with
                      EDGETUNE_TOKEN set, every request needs the token; open the page once with ?token=…)
  --allow-host <names>  Host names served besides loopback and the bound address (comma-separated,
                      repeatable; other Host headers get 421: DNS rebinding protection)
  --top <n>           predictions shown (default 5)
  --ep <list>         default provider order for the page, e.g. webgpu,wasm (default webnn,webgpu,wasm)
  --rebuild           rebuild the page bundle before serving`;

export const kiosk: Command = {
  summary: 'serve the browser kiosk (live camera classification, teach new classes in the page)',
  usage,
  async run(argv: string[], io: CommandIO) {
    const { values: v, positionals } = parse(
      argv,
      {
        model: { type: 'string', default: 'mobilenetv2-int8', path: 'a model' },
        port: { type: 'string' },
        host: { type: 'string', default: '127.0.0.1' },
        'allow-host': { type: 'string', multiple: true },
        top: { type: 'string' },
        ep: { type: 'string' },
        rebuild: { type: 'boolean', default: false },
      },
      false,
    );
    void positionals;
    const port = intOption('port', v.port, 8080, 0, 65535);
    const topK = intOption('top', v.top, 5);
    const ep = v.ep;
    if (ep !== undefined) {
      for (const p of ep.split(',').map((s) => s.trim()).filter(Boolean)) resolveProviderName(p, providerNamesIn('browser'), ' for the kiosk');
    }
    const k = await startKiosk({
      model: v.model,
      port,
      host: v.host,
      topK,
      providers: ep,
      rebuild: Boolean(v.rebuild),
      allowHosts: (v['allow-host'] ?? []).flatMap((h) => listOption(h) ?? []),
      log: (l) => io.stderr.write(l + '\n'),
    });
    // Ctrl-C is handled before the line that says so: a supervisor may signal as soon as it reads it
    const stop = interruptSignal();
    io.stdout.write(`edgetune kiosk: serving ${k.config.model.id} at ${k.url} (Ctrl-C to stop)\n`);
    await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
    stop.dispose();
    await k.close();
    io.stderr.write('edgetune kiosk: stopped\n');
    return 0;
  },
};
