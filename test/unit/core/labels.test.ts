// The label rules (runtime/core/labels.ts) on the real label files: one parser for every format, labels
// and offset decided together against the output size (refused with the counts when nothing fits), and
// the one folder → class matcher of eval, quantize --eval and finetune's validation folder.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkLabel } from '../../../runtime/stream/teach.js';
import { CLASS_NAME_RULE, classNameProblem, decideLabels, describeFolderMatches, isClassName, matchClassFolders, parseLabels } from '../../../runtime/core/labels.js';
import { shared } from '../../helpers.js';

const coral = parseLabels(readFileSync(shared('models', 'tflite', 'coral_imagenet_labels.txt'), 'utf8'), 'coral_imagenet_labels.txt');
const simple = parseLabels(readFileSync(shared('labels', 'imagenet-simple-labels.json'), 'utf8'), 'imagenet-simple-labels.json');
const fruit = parseLabels(readFileSync(shared('models', 'teachable-machine', 'fruit-tflite', 'labels.txt'), 'utf8'), 'labels.txt');

describe('parseLabels', () => {
  it('reads the shared files: Coral (1001 lines, background first), the JSON list, Teachable Machine "i NAME" lines', () => {
    expect(coral).toHaveLength(1001);
    expect(coral.slice(0, 2)).toEqual(['background', 'tench, Tinca tinca']);
    expect(simple).toHaveLength(1000);
    expect(simple[207]).toBe('Golden Retriever');
    expect(fruit).toEqual(['FRESH APPLE', 'FRESH BANANA', 'FRESH ORANGE', 'ROTTEN APPLE', 'ROTTEN ORANGE', 'ROTTEN BANANA']);
  });

  it('a BOM, CRLF and trailing blank lines are fine; a blank line inside, an empty file and bad JSON are refused naming the file', () => {
    expect(parseLabels('\uFEFFcat\r\ndog\r\n\r\n', 'l.txt')).toEqual(['cat', 'dog']);
    expect(parseLabels('\uFEFF["a", "b"]', 'l.json')).toEqual(['a', 'b']);
    expect(() => parseLabels('cat\n\ndog\n', 'l.txt')).toThrow('l.txt: line 2 is empty (a label list has one name per line)');
    expect(() => parseLabels(' \n\n', 'l.txt')).toThrow('l.txt: label file is empty');
    expect(() => parseLabels('["a", 3]', 'l.json')).toThrow('l.json: expected a JSON array of label strings');
    expect(() => parseLabels('["a"', 'l.json')).toThrow(/^l\.json: label file is not valid JSON/);
  });
});

describe('decideLabels: labels and offset together, from the output size', () => {
  const d = (labels: readonly string[], outputs: number | undefined, offset?: number) =>
    decideLabels({ labels, labelsFrom: 'flags', ...(offset !== undefined ? { offset, offsetFrom: 'card-file' } : {}), outputs, model: 'm.onnx' });

  it('Coral: 1001 names (background first) on 1001 outputs is offset 0 with that list; 1000 names on 1001 is offset 1', () => {
    const a = d(coral, 1001);
    expect(a.labelOffset).toBe(0);
    expect(a.labels[208]).toBe('golden retriever');
    expect(a.reason).toBe('1001 labels (from flags) for 1001 outputs: label i is output i (offset 0)');
    const b = d(simple, 1001);
    expect(b.labelOffset).toBe(1);
    expect(b.reason).toBe('1000 labels (from flags) for 1001 outputs: output 0 is a background class, label i is output i + 1 (offset 1)');
    expect(d(simple, 1000).labelOffset).toBe(0);
    expect(d(['a'], undefined).labelOffset).toBe(0); // a dynamic output size cannot be checked
  });

  it('refuses a count that fits neither way, a stated offset that does not cover the output, and a 0-score output', () => {
    expect(() => d(simple, 1002)).toThrow('m.onnx: 1000 labels (from flags) for 1002 outputs: a label list has one name per output, or one fewer when output 0 is a background class');
    expect(() => d(fruit, 6, 1e9)).toThrow(
      'm.onnx: label offset 1000000000 (from card-file) + 6 labels (from flags) = 1000000006, but the model has 6 outputs; label i names output i + offset, so the list must cover the output exactly',
    );
    expect(d(fruit.slice(1), 6, 1).labelOffset).toBe(1);
    expect(() => d(['x'], 0)).toThrow('m.onnx: the output has 0 scores per image: nothing to classify');
  });
});

describe('matchClassFolders: the one folder rule', () => {
  it('hymenoptera on ImageNet: ants → ant (310), bees → bee (309) by the singular, on both label files', () => {
    const m = matchClassFolders(['ants', 'bees'], simple);
    expect(m.problems).toEqual([]);
    expect(m.matched).toEqual([
      { folder: 'ants', index: 310, label: 'ant', how: 'singular' },
      { folder: 'bees', index: 309, label: 'bee', how: 'singular' },
    ]);
    expect(describeFolderMatches(m, 0)).toEqual(['ants → ant (output 310, singular)', 'bees → bee (output 309, singular)']);
    // Coral's names carry synonyms ("ant, emmet, pismire"), and its list starts with background
    const c = matchClassFolders(['ants', 'Golden_Retriever'], coral);
    expect(c.matched.map((x) => [x.index, x.how])).toEqual([[311, 'singular'], [208, 'normalised']]);
  });

  it('exact first; case, _ and - ignored; a folder matching several labels, or two folders on one label, are problems', () => {
    expect(matchClassFolders(['maillot'], coral).matched).toEqual([{ folder: 'maillot', index: 639, label: 'maillot', how: 'exact' }]);
    expect(matchClassFolders(['Maillot'], coral).problems).toEqual(['class folder "Maillot" matches 2 labels (639 "maillot", 640 "maillot, tank suit"): rename the folder to one label exactly']);
    expect(matchClassFolders(['daisies', 'daisy'], ['rose', 'daisy']).problems).toEqual(['class folders "daisies" and "daisy" both match label 1 "daisy"']);
    expect(matchClassFolders(['sunflowers'], ['sunflower', 'tulip']).matched[0]).toMatchObject({ index: 0, how: 'singular' });
    expect(matchClassFolders(['boxes', 'daisies'], ['box', 'daisy']).matched.map((x) => x.index)).toEqual([0, 1]);
    expect(matchClassFolders(['zebra'], ['cat', 'dog'], { of: 'pets.onnx' }).problems).toEqual(['class folder "zebra" is not a label of pets.onnx (its labels: cat, dog)']);
  });
});

describe('isClassName: the one rule for a new class name (finetune --add-class, the kiosk page)', () => {
  it('takes what a card, classify lines, labels.txt and a folder can hold, and refuses the rest', () => {
    // the names of the real datasets' classes, and other scripts
    const ok = ['daisy', 'bean_rust', 'angular_leaf_spot', 'golden retriever', 'Gänseblümchen', 'ひまわり', 'a+b-c.d'];
    for (const n of ok) expect(isClassName(n), n).toBe(true);
    // what broke classify's lines or the Triton export before (new-user-log F15)
    // "." and ".." were taken: as a class folder they are the dataset itself or its parent
    const bad = ['', '  ', '.', '..', ' x', 'x ', 'sun\nflowers', 'tab\there', 'a/b', '/', 42, undefined];
    for (const n of bad) expect(isClassName(n), JSON.stringify(n)).toBe(false);
    // what the kiosk page shows
    expect(classNameProblem('  ')).toBe('type a class name first');
    expect(classNameProblem('a/b')).toBe('"a/b" cannot name a class: it must be a class name (not empty, not "." or ".."; no line break or other control character, no "/", no leading or trailing space)');
    expect(classNameProblem('daisy')).toBeUndefined();
    expect(classNameProblem('..')).toBe(`".." cannot name a class: it must be ${CLASS_NAME_RULE}`);
    expect(classNameProblem('.', { teach: true })).toMatch(/^"\." cannot name a class taught on the server/);
    // the first names of these are fine: "..." and ".x" are names, not path parts
    for (const n of ['...', '.x', 'x.']) expect(isClassName(n), n).toBe(true);
  });

  it('a label file keeps labels that are not class names (Places365\'s "/a/abbey", "AC/DC", ".."): they name outputs, not folders', () => {
    // before: refused ("l.txt: line 1 ("/a/abbey") cannot name a class"), so classify/eval/serve could not read Places365's labels
    expect(parseLabels('/a/abbey\n/a/airfield\nAC/DC\n..\n', 'l.txt')).toEqual(['/a/abbey', '/a/airfield', 'AC/DC', '..']);
    expect(parseLabels('0 /a/abbey\n1 .\n', 'tm.txt')).toEqual(['/a/abbey', '.']);
    expect(parseLabels('["ants", "a/b"]', 'l.json')).toEqual(['ants', 'a/b']);
    // a name that becomes a folder is still checked: --add-class, capture, the kiosk page (isClassName above)
    expect(isClassName('/a/abbey')).toBe(false);
  });

  it("watch --teach's folder rule is a subset: every label it takes is a class name", () => {
    for (const n of ['daisy', 'bean_rust', 'Gänseblümchen', 'a+b-c.d', 'x'.repeat(64)]) expect(isClassName(checkLabel(n))).toBe(true);
  });
});
