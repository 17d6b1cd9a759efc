// The kiosk page's DOM helpers: element lookup by id ($, an error naming a missing element), element
// creation (h), the error banner, and waiting (sleep, nextFrame). Used by app.ts and results.ts.


export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
}

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const c of children) el.append(c);
  return el;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** After the next paint (falls back to a timer when the page is hidden and frames stop). */
export const nextFrame = () =>
  new Promise<void>((r) => {
    const t = setTimeout(r, 50);
    requestAnimationFrame(() => {
      clearTimeout(t);
      setTimeout(r, 0);
    });
  });

export function showError(msg: string | undefined): void {
  const el = $('error');
  el.hidden = !msg;
  el.textContent = msg ?? '';
}
