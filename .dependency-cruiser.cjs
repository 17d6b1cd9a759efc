// Layering rules, checked in CI (`npm run lint:deps`, run by `npm test`). Data flows one way:
// source → decode/preprocess → session → postprocess → sink; browser-safe code stays browser-safe.
/** Modules the browser kiosk bundles: no Node built-ins, no onnxruntime-node, no sharp. */
const BROWSER_SAFE = [
  '^runtime/core/',
  '^runtime/onnx/',
  '^runtime/train/(?!node/)',
  '^runtime/image/(preprocess|geometry|gray|resample)\\.ts$',
  '^runtime/classify/(postprocess|describe)\\.ts$',
  '^runtime/stream/smoothing\\.ts$',
  '^runtime/kiosk/config\\.ts$',
  '^runtime/kiosk/page/',
  '^models/registry\\.ts$',
];
/** npm packages browser-safe code may import (pure JavaScript, no Node APIs). */
const BROWSER_PACKAGES = '^node_modules/(protobufjs|flatbuffers|valibot|idb|comlink|onnxruntime-web|onnxruntime-common|long|@protobufjs|ml-matrix|is-any-array|ml-array-rescale|ml-array-max|ml-array-min)/';

module.exports = {
  forbidden: [
    {
      name: 'library-imports-cli',
      comment: 'Library code never imports the CLI (the arrow runs from cli/ to the library, never back).',
      severity: 'error',
      from: { path: '^(runtime|models|calibration|devices)/', pathNot: '^runtime/cli/' },
      to: { path: '^runtime/cli/' },
    },
    {
      name: 'command-imports-command',
      comment: 'Commands are thin and independent: shared code lives in the library or runtime/cli/*.ts.',
      severity: 'error',
      from: { path: '^runtime/cli/commands/([^/]+)\\.ts$' },
      to: { path: '^runtime/cli/commands/', pathNot: '^runtime/cli/commands/$1\\.ts$' },
    },
    {
      name: 'browser-safe-imports-node',
      comment: 'Browser-safe modules never import Node built-ins.',
      severity: 'error',
      from: { path: BROWSER_SAFE },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'browser-safe-imports-node-only',
      comment: 'Browser-safe modules import only other browser-safe modules and pure-JavaScript packages (no onnxruntime-node, no sharp).',
      severity: 'error',
      from: { path: BROWSER_SAFE },
      to: { dependencyTypesNot: ['core', 'type-only'], pathNot: [...BROWSER_SAFE, BROWSER_PACKAGES] },
    },
    {
      name: 'onnxruntime-only-in-ort',
      comment: 'One module imports onnxruntime in Node (runtime/session/ort.ts); the page has its own engine.',
      severity: 'error',
      from: { path: '^(runtime|models|calibration|devices|scripts)/', pathNot: ['^runtime/session/ort\\.ts$', '^runtime/kiosk/page/'] },
      to: { path: '^node_modules/onnxruntime-(node|web|common)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'calibration-devices-apart',
      comment: 'calibration/ and devices/ never import each other.',
      severity: 'error',
      from: { path: '^calibration/' },
      to: { path: '^devices/' },
    },
    {
      name: 'devices-calibration-apart',
      severity: 'error',
      from: { path: '^devices/' },
      to: { path: '^calibration/' },
    },
    {
      name: 'no-circular',
      comment: 'Import cycles make the layering unreadable.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|test)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], extensions: ['.ts', '.js', '.mjs', '.cjs', '.d.ts'] },
  },
};
