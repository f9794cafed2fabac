// Query / passage prefixes some retrieval models were trained with. Using the wrong one (or none)
// quietly lowers search quality, so they are chosen from the model id, and can be overridden.

export interface TextPrefixes {
  query: string;
  passage: string;
}

const RULES: Array<{ test: RegExp; prefixes: TextPrefixes }> = [
  { test: /(^|[/_-])(multilingual-)?e5-/i, prefixes: { query: 'query: ', passage: 'passage: ' } },
  { test: /bge-[a-z]+-(en|zh)(-v1\.5)?$/i, prefixes: { query: 'Represent this sentence for searching relevant passages: ', passage: '' } },
  { test: /nomic-embed-text/i, prefixes: { query: 'search_query: ', passage: 'search_document: ' } },
  { test: /snowflake-arctic-embed/i, prefixes: { query: 'Represent this sentence for searching relevant passages: ', passage: '' } },
  { test: /mxbai-embed/i, prefixes: { query: 'Represent this sentence for searching relevant passages: ', passage: '' } },
];

/** Prefixes for a model id (hub id or folder name); none for symmetric models such as all-MiniLM-L6-v2. */
export function prefixesForModel(model: string): TextPrefixes {
  const name = model.replace(/\\/g, '/').replace(/\/+$/, '');
  for (const rule of RULES) if (rule.test.test(name)) return rule.prefixes;
  return { query: '', passage: '' };
}
