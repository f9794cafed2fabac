// Small DOM helpers for the inspector webview. Text goes in through textContent / title / attributes
// only — never innerHTML — so workspace text can never become markup.

export interface ElProps {
  className?: string;
  text?: string;
  title?: string;
  testid?: string;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, props: ElProps = {}, ...children: Node[]): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (props.className) e.className = props.className;
  if (props.text !== undefined) e.textContent = props.text;
  if (props.title !== undefined) e.title = props.title;
  if (props.testid) e.dataset.testid = props.testid;
  for (const c of children) e.append(c);
  return e;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

/** An SVG element with attributes (numbers are written as they are, strings as given). */
export function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, ...children: Node[]): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  for (const c of children) e.append(c);
  return e;
}

/** An SVG `<title>` child: the native hover tooltip. */
export function svgTitle(text: string): SVGTitleElement {
  const t = svg('title');
  t.textContent = text;
  return t;
}

export function svgText(text: string, attrs: Record<string, string | number>): SVGTextElement {
  const t = svg('text', attrs);
  t.textContent = text;
  return t;
}

export function button(text: string, onClick: () => void, opts: { testid?: string; secondary?: boolean; title?: string } = {}): HTMLButtonElement {
  const b = el('button', { text, testid: opts.testid, title: opts.title, className: opts.secondary ? 'secondary' : undefined });
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

export function select<T extends string>(
  label: string, value: T, options: readonly (readonly [T, string])[], onChange: (v: T) => void, testid: string,
): HTMLElement {
  const s = el('select', { testid });
  for (const [v, text] of options) {
    const o = el('option', { text });
    o.value = v;
    o.selected = v === value;
    s.append(o);
  }
  s.addEventListener('change', () => onChange(s.value as T));
  return el('label', { className: 'control' }, document.createTextNode(`${label} `), s);
}

/** Layer label used everywhere in the panel: `emb` for the embeddings output, `L3` for layer 3. */
export function layerLabel(l: number): string {
  return l === 0 ? 'emb' : `L${l}`;
}

/** A model folder by its name (absolute paths are long and say little); a hub id as it is. */
export function shortModelName(model: string): string {
  return /^([a-zA-Z]:)?[\\/]/.test(model) ? model.split(/[\\/]/).filter(Boolean).pop() ?? model : model;
}
