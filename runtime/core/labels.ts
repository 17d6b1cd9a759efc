// Labels, one rule each (browser-safe): how a label file's text becomes names (`parseLabels`), how a
// label list and its offset are decided against a model's output size (`decideLabels`), and how a
// dataset's class folders map to a model's labels (`matchClassFolders`). Every command, the importers,
// the model card and the kiosk page call these; nothing else parses labels or matches folders. A new
// class's name is checked by one rule too (`isClassName`: finetune --add-class, capture, the kiosk page;
// never a label file's labels, which name a model's outputs (Places365's "/a/abbey", "AC/DC") and no folder;
// `isTeachLabel`, its stricter subset, for the teach API's folders and the page that teaches through it).
//
// The label rule (README "Labels"): label i names output i + labelOffset, and the list must cover the
// output exactly. When the layer that gave the labels (or a higher one) states the offset, that offset
// is checked; otherwise it is decided from the counts: as many labels as outputs → offset 0 (a Coral
// 1001-line file starting with `background` on a 1001-output model keeps "background" as label 0),
// one label fewer than outputs → offset 1 (output 0 is an unnamed background class). Any other count
// is refused with both numbers and where the labels came from. Every label names its output: an empty
// (or all-space) label is refused wherever it came from (a JSON label list, a card, embedded metadata).
// A multilabel or regression model's outputs are read by their labels' names (the labels above 50%,
// `values[].name`, a CSV's columns), so its labels must be unique; a classifier's may repeat (Coral's
// ImageNet list names outputs 135 and 518 "crane": the index tells them apart, as ImageNet does).
//
// The folder rule (README "Labels"): a class folder matches a label exactly; else, with case, `_`/`-`
// and repeated spaces ignored, one of the label's comma-separated synonyms (ImageNet's "tench, Tinca
// tinca"), else the same for the folder's singular (ants → ant, daisies → daisy, boxes → box). A folder
// that matches several labels at its first matching step is ambiguous; two folders on one label clash.

import { EdgetuneError } from './errors.js';
import type { ModelTask } from './model-card.js';

/** What a class name must be (isClassName), for messages. */
export const CLASS_NAME_RULE = 'a class name (not empty, not "." or ".."; no line break or other control character, no "/", no leading or trailing space)';

/**
 * Whether `name` can name a new class: what a model card's labels, `classify`'s lines, Triton's labels.txt
 * and a class folder can all hold (CLASS_NAME_RULE). `watch --teach` accepts a stricter subset over HTTP
 * (isTeachLabel: the names it makes folders of).
 */
export function isClassName(name: unknown): name is string {
  // "." and ".." name no folder of their own: as a class folder they are the dataset itself or its parent
  return typeof name === 'string' && name.trim() !== '' && name === name.trim() && name !== '.' && name !== '..' && !/[\p{Cc}/]/u.test(name);
}

/** What a label taught over HTTP (`watch --teach`) must be (isTeachLabel), for messages. */
export const TEACH_LABEL_RULE = '1 to 64 letters, digits, spaces or "_.+-" (starting with a letter or digit)';

const TEACH_LABEL = /^[\p{L}\p{N}][\p{L}\p{N} _.+-]{0,63}$/u;

/**
 * Whether `name` can be a label taught over HTTP (`watch --teach`, runtime/stream/teach.ts checkLabel):
 * a class name (isClassName) that is also a safe folder name of its own making: TEACH_LABEL_RULE, and
 * not ending with "." or a space.
 */
export function isTeachLabel(name: unknown): name is string {
  return isClassName(name) && TEACH_LABEL.test(name) && !name.endsWith('.') && !name.endsWith(' ');
}

/**
 * What is wrong with `name` as a new class's name, for a person typing it (the kiosk page); undefined
 * when isClassName (`teach`: isTeachLabel, the rule of the teach API the page sends it to).
 */
export function classNameProblem(name: string, o: { teach?: boolean } = {}): string | undefined {
  if (!name.trim()) return 'type a class name first';
  if (o.teach) return isTeachLabel(name) ? undefined : `"${name}" cannot name a class taught on the server: it must be ${TEACH_LABEL_RULE}`;
  return isClassName(name) ? undefined : `"${name}" cannot name a class: it must be ${CLASS_NAME_RULE}`;
}

/**
 * Parse label-file text: a JSON array of strings, Teachable Machine's `0 NAME` lines (the index prefix
 * is dropped when every line has the next index, 0, 1, 2, …), or one name per line (ImageNet/Coral
 * `labels.txt`). A BOM, CRLF line ends and blank lines at the end are fine; surrounding spaces are
 * trimmed. `file` names the source in errors. Errors: EINPUT `<file>: label file is empty`, `<file>:
 * line N is empty (a label list has one name per line)`, `<file>: label file is not valid JSON (…)`,
 * `<file>: expected a JSON array of label strings` (each: the text is not a label list). The labels
 * themselves are not checked against isClassName: they name outputs (Places365's "/a/abbey"); a name
 * is checked where it becomes a folder (finetune --add-class, capture, teach).
 */
export function parseLabels(text: string, file: string): string[] {
  const body = text.replace(/^\uFEFF/, '');
  const trimmed = body.trim();
  if (trimmed.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(trimmed);
    } catch (err) {
      throw new EdgetuneError('EINPUT', `${file}: label file is not valid JSON (${(err as Error).message})`, { subject: file });
    }
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new EdgetuneError('EINPUT', `${file}: expected a JSON array of label strings`, { subject: file });
    return v as string[];
  }
  const lines = body.split(/\r\n|\r|\n/).map((l) => l.trim());
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  if (!lines.length) throw new EdgetuneError('EINPUT', `${file}: label file is empty`, { subject: file });
  const blank = lines.indexOf('');
  if (blank >= 0) throw new EdgetuneError('EINPUT', `${file}: line ${blank + 1} is empty (a label list has one name per line)`, { subject: file });
  const indexed = lines.map((l) => /^(\d+)\s+(\S.*)$/.exec(l));
  if (indexed.every((m, i) => m && Number(m[1]) === i)) return indexed.map((m) => m![2]!.trim());
  return lines;
}

/** Why a card's labels and offset are what they are (what `inspect` prints). */
export interface LabelDecision {
  labels: string[];
  labelOffset: number;
  /** One sentence: the counts and the rule that decided the offset. */
  reason: string;
}

/** What decideLabels decides from: the merged card's labels, where they and a stated offset came from, and the output size. */
export interface DecideLabelsInput {
  labels: readonly string[];
  /** Where the labels came from (a card source: `flags`, `card-file`, `embedded`, …), for messages. */
  labelsFrom: string;
  /** An offset stated by the labels' layer or a higher one; undefined = decide from the counts. */
  offset?: number;
  /** Where the stated offset came from. */
  offsetFrom?: string;
  /** Scores per image of the model's output; undefined when the graph leaves it dynamic. */
  outputs: number | undefined;
  /** How errors name the model (empty: the caller prefixes its own name). */
  model: string;
  /** What the outputs mean (absent: classification): a multilabel or regression model's labels must be unique. */
  task?: ModelTask;
  /**
   * The file each source was read from (`card-file`: the `.card.json` beside the model), named in
   * errors after the source: `(from card-file /m/m.card.json)`. Never in `reason`, which the kiosk page
   * receives with the card.
   */
  files?: Readonly<Record<string, string>>;
}

/**
 * Decide labels and offset together by the label rule (see the module header). Errors: EMODEL naming
 * the model, the counts and the source (and its file, `files`), e.g. `m.onnx: 7 labels (from flags) for
 * 6 outputs: a label list has one name per output, or one fewer when output 0 is a background class`,
 * `m.onnx: label offset 1000000000 (from card-file /m/m.card.json) + 6 labels (from card-file
 * /m/m.card.json) = 1000000006, but the model has 6 outputs; …`, `m.onnx: the output has 0 scores per
 * image: nothing to classify`, `m.onnx: labels[9] (from embedded) is empty: every label names an
 * output`, or `m.onnx: labels[3] and labels[9] (from flags) are both "8": a regression model's outputs
 * are read by their labels' names, so no two may be the same`.
 */
export function decideLabels(o: DecideLabelsInput): LabelDecision {
  const n = o.labels.length;
  const N = o.outputs;
  const at = o.model ? `${o.model}: ` : '';
  const from = (source: string) => (o.files?.[source] ? `${source} ${o.files[source]}` : source);
  const labelsFrom = from(o.labelsFrom);
  if (N === 0) throw new EdgetuneError('EMODEL', `${at}the output has 0 scores per image: nothing to classify`, { subject: o.model });
  const blank = o.labels.findIndex((l) => l.trim() === '');
  if (blank >= 0) {
    const l = o.labels[blank]!;
    throw new EdgetuneError('EMODEL', `${at}labels[${blank}] (from ${labelsFrom}) is ${l === '' ? 'empty' : `only spaces (${JSON.stringify(l)})`}: every label names an output`, { subject: o.model });
  }
  if (o.task === 'multilabel' || o.task === 'regression') {
    const seen = new Map<string, number>();
    o.labels.forEach((l, i) => {
      const first = seen.get(l);
      if (first !== undefined) {
        throw new EdgetuneError('EMODEL', `${at}labels[${first}] and labels[${i}] (from ${labelsFrom}) are both ${JSON.stringify(l)}: a ${o.task} model's outputs are read by their labels' names, so no two may be the same`, {
          subject: o.model,
        });
      }
      seen.set(l, i);
    });
  }
  if (o.offset !== undefined) {
    if (N !== undefined && n + o.offset !== N) {
      throw new EdgetuneError(
        'EMODEL',
        `${at}label offset ${o.offset} (from ${from(o.offsetFrom ?? o.labelsFrom)}) + ${n} labels (from ${labelsFrom}) = ${n + o.offset}, but the model has ${N} outputs; label i names output i + offset, so the list must cover the output exactly`,
        { subject: o.model },
      );
    }
    return { labels: [...o.labels], labelOffset: o.offset, reason: `${n} labels (from ${o.labelsFrom}), label offset ${o.offset} (from ${o.offsetFrom ?? o.labelsFrom})${N === undefined ? '; the output size is dynamic' : ` for ${N} outputs`}` };
  }
  if (N === undefined || n === N) {
    return { labels: [...o.labels], labelOffset: 0, reason: `${n} labels (from ${o.labelsFrom}) ${N === undefined ? 'on a dynamic-size output' : `for ${N} outputs`}: label i is output i (offset 0)` };
  }
  if (n === N - 1) {
    return { labels: [...o.labels], labelOffset: 1, reason: `${n} labels (from ${o.labelsFrom}) for ${N} outputs: output 0 is a background class, label i is output i + 1 (offset 1)` };
  }
  throw new EdgetuneError(
    'EMODEL',
    `${at}${n} labels (from ${labelsFrom}) for ${N} outputs: a label list has one name per output, or one fewer when output 0 is a background class`,
    { subject: o.model },
  );
}

/** How a class folder matched its label. */
export type FolderMatchKind = 'exact' | 'normalised' | 'singular';

/** One class folder matched to one label by matchClassFolders. */
export interface FolderMatch {
  /** The folder's name (not its path). */
  folder: string;
  /** Index into the label list (add the model's label offset for the output index). */
  index: number;
  /** `labels[index]`, as the model names it. */
  label: string;
  /** Which step of the folder rule matched it. */
  how: FolderMatchKind;
}

/** What matchClassFolders found: the folders matched, and one sentence per folder that was not. */
export interface FolderMatching {
  /** The folders that matched one label, in the folders' order. */
  matched: FolderMatch[];
  /** One sentence per folder that matched nothing, several labels, or a label another folder took. */
  problems: string[];
}

const norm = (s: string) => s.toLowerCase().replace(/[_-]+/g, ' ').replace(/\s+/g, ' ').trim();

function singulars(f: string): string[] {
  const out: string[] = [];
  if (/ies$/.test(f)) out.push(f.replace(/ies$/, 'y'));
  if (/(s|x|z|ch|sh)es$/.test(f)) out.push(f.replace(/es$/, ''));
  if (/[^s]s$/.test(f)) out.push(f.replace(/s$/, ''));
  return out;
}

/**
 * Match class folder names to a model's labels (or a training set's classes: `kind` 'class'; `of`
 * names the model or set in messages) by the folder rule (see the module header). Never
 * throws: what did not match is in `problems`; callers refuse (`eval`, finetune's validation folder)
 * or report accuracy as not available (`quantize --eval`).
 */
export function matchClassFolders(folders: readonly string[], labels: readonly string[], o: { kind?: 'label' | 'class'; of?: string } = {}): FolderMatching {
  const kind = o.kind ?? 'label';
  const kinds = kind === 'label' ? 'labels' : 'classes';
  const of = o.of ? ` of ${o.of}` : '';
  const names = labels.map((l) => [norm(l), ...l.split(',').map(norm)].filter((x) => x));
  const find = (key: string) => {
    const hits: number[] = [];
    names.forEach((ns, i) => ns.includes(key) && hits.push(i));
    return hits;
  };
  const matched: FolderMatch[] = [];
  const problems: string[] = [];
  const taken = new Map<number, string>();
  for (const folder of folders) {
    let hits = labels.flatMap((l, i) => (l === folder ? [i] : []));
    let how: FolderMatchKind = 'exact';
    if (!hits.length) {
      hits = find(norm(folder));
      how = 'normalised';
    }
    if (!hits.length) {
      for (const s of singulars(norm(folder))) {
        hits = find(s);
        if (hits.length) break;
      }
      how = 'singular';
    }
    if (!hits.length) {
      problems.push(`class folder "${folder}" is not a ${kind}${of} (its ${kinds}: ${labels.slice(0, 12).join(', ')}${labels.length > 12 ? ', …' : ''})`);
      continue;
    }
    if (hits.length > 1) {
      problems.push(`class folder "${folder}" matches ${hits.length} ${kinds}${of} (${hits.slice(0, 4).map((i) => `${i} "${labels[i]}"`).join(', ')}): rename the folder to one label exactly`);
      continue;
    }
    const index = hits[0]!;
    const other = taken.get(index);
    if (other !== undefined) {
      problems.push(`class folders "${other}" and "${folder}" both match ${kind} ${index}${of} "${labels[index]}"`);
      continue;
    }
    taken.set(index, folder);
    matched.push({ folder, index, label: labels[index]!, how });
  }
  return { matched, problems };
}

/** One line per folder that did not match exactly: `ants → ant (310, singular)`; empty when all matched exactly. */
export function describeFolderMatches(m: FolderMatching, offset = 0): string[] {
  return m.matched.filter((x) => x.how !== 'exact').map((x) => `${x.folder} → ${x.label} (output ${x.index + offset}, ${x.how})`);
}
