//! A DER tree to edit certificates byte by byte: every encoding a decoder might refuse is made by
//! changing one node and re-encoding, with all enclosing lengths recomputed.

#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub tag: u8,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Bytes(Vec<u8>),
    Children(Vec<Node>),
}

impl Node {
    /// Parses one DER element (tags below 31, definite lengths); constructed ones are descended.
    pub fn parse(der: &[u8]) -> Node {
        let (node, rest) = Node::parse_one(der);
        assert!(rest.is_empty(), "trailing bytes after the DER element");
        node
    }

    fn parse_one(der: &[u8]) -> (Node, &[u8]) {
        let tag = der[0];
        let (len, header) = match der[1] {
            n if n < 0x80 => (usize::from(n), 2),
            n => {
                let count = usize::from(n & 0x7f);
                let len = der[2..2 + count]
                    .iter()
                    .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
                (len, 2 + count)
            }
        };
        let content = &der[header..header + len];
        let body = if tag & 0x20 != 0 {
            let mut children = Vec::new();
            let mut rest = content;
            while !rest.is_empty() {
                let (child, after) = Node::parse_one(rest);
                children.push(child);
                rest = after;
            }
            Body::Children(children)
        } else {
            Body::Bytes(content.to_vec())
        };
        (Node { tag, body }, &der[header + len..])
    }

    pub fn encode(&self) -> Vec<u8> {
        let content = match &self.body {
            Body::Bytes(bytes) => bytes.clone(),
            Body::Children(children) => children.iter().flat_map(Node::encode).collect(),
        };
        let mut out = vec![self.tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|&b| b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend(content);
        out
    }

    /// The child at `path` (indexes from this node down).
    pub fn at(&mut self, path: &[usize]) -> &mut Node {
        let mut node = self;
        for &i in path {
            match &mut node.body {
                Body::Children(children) => node = &mut children[i],
                Body::Bytes(_) => panic!("{path:?} descends into a primitive"),
            }
        }
        node
    }

    pub fn children(&mut self) -> &mut Vec<Node> {
        match &mut self.body {
            Body::Children(children) => children,
            Body::Bytes(_) => panic!("a primitive has no children"),
        }
    }

    pub fn bytes(&mut self) -> &mut Vec<u8> {
        match &mut self.body {
            Body::Bytes(bytes) => bytes,
            Body::Children(_) => panic!("a constructed node has no bytes"),
        }
    }

    pub fn primitive(tag: u8, bytes: &[u8]) -> Node {
        Node {
            tag,
            body: Body::Bytes(bytes.to_vec()),
        }
    }
}

/// Paths inside a v3 certificate (`Certificate ::= SEQUENCE { tbs, signatureAlgorithm, signature }`,
/// tbs starting with the explicit `[0] version`).
pub mod path {
    pub const SERIAL: &[usize] = &[0, 1];
    pub const TBS_SIGNATURE_ALG: &[usize] = &[0, 2];
    pub const ISSUER: &[usize] = &[0, 3];
    pub const SUBJECT: &[usize] = &[0, 5];
    pub const OUTER_SIGNATURE_ALG: &[usize] = &[1];
    /// The `[3]` extensions wrapper's inner SEQUENCE.
    pub const EXTENSIONS: &[usize] = &[0, 7, 0];
}
