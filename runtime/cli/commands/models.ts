// `edgetune models list|path|fetch`: the registry with each model's precision, input and where its
// file is right now (local / cache / remote); `fetch` downloads into the cache with a sha256 check.

import { labelsOf, locateModels, resolveModel } from '../../../models/loader.js';
import { parse, writeJson, type Command } from '../args.js';
import { table } from '../../core/format.js';
import { EdgetuneError } from '../../core/errors.js';

const usage = `Usage: edgetune models [list] [--json]
       edgetune models fetch <id>...     download into the cache (sha256-checked)
       edgetune models path <id>         print the resolved file path`;

export const models: Command = {
  summary: 'list registry models and where their files are; fetch them',
  usage,
  async run(argv, io) {
    const { values: v, positionals } = parse(argv, { json: { type: 'boolean', default: false } });
    const [sub = 'list', ...ids] = positionals;
    if (sub === 'list') {
      const rows = locateModels();
      if (v.json) {
        for (const r of rows) {
          writeJson(io, {
            id: r.entry.id,
            precision: r.entry.precision,
            input: r.entry.input,
            where: r.where,
            path: r.path ?? null,
            url: r.entry.url ?? null,
            sha256: r.entry.sha256 ?? null,
          });
        }
      } else {
        io.stdout.write(
          table([
            ['id', 'precision', 'input', 'where', 'file'],
            ...rows.map((r) => [
              r.entry.id,
              r.entry.precision,
              `${r.entry.input.layout} ${r.entry.input.shape.map((d) => (d < 0 ? 'N' : d)).join('x')} ${r.entry.input.dtype}`,
              r.where,
              r.path ?? r.entry.url ?? r.entry.file,
            ]),
          ]),
        );
      }
      return 0;
    }
    if (sub === 'fetch' || sub === 'path') {
      if (!ids.length) throw new EdgetuneError('EARG', `${sub}: give at least one model id`);
      for (const id of ids) {
        const r = await resolveModel(id);
        if (r.entry) await labelsOf(r.entry);
        io.stdout.write(sub === 'path' ? `${r.path}\n` : `${id}: ${r.source} ${r.path}\n`);
      }
      return 0;
    }
    throw new EdgetuneError('EARG', `models: unknown subcommand "${sub}": expected list, fetch or path`);
  },
};
