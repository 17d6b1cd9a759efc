// `npm run build:web`: builds the browser kiosk bundle (runtime/kiosk/build.ts does the work).
//
//   node dist/scripts/build-web.js [--out <dir>] [--no-minify]

import path from 'node:path';
import { messageOf } from '../runtime/core/errors.js';
import { buildWeb } from '../runtime/kiosk/build.js';

const args = process.argv.slice(2);
const outIdx = args.indexOf('--out');
// `--out ""` (an unset variable) or `--out` last is refused by buildWeb (checkDirPath), never the current directory
const outDir = outIdx >= 0 ? (args[outIdx + 1] ?? '') : undefined;
buildWeb({ outDir, minify: !args.includes('--no-minify'), log: (l) => console.error(l) }).then(
  (r) => console.log(`kiosk bundle: ${path.relative(process.cwd(), r.outDir) || '.'} (app.js ${(r.bytes / 1024).toFixed(0)} KB) in ${(r.ms / 1000).toFixed(1)}s`),
  (err) => {
    console.error(`build-web: ${messageOf(err).replace(' for outDir ', ' for --out ')}`);
    process.exitCode = 1;
  },
);
