// Types of codegen.mjs for the staleness test.
export declare const HEADER: string;
export declare function generate(root?: string): Map<string, string>;
