package traceql

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// tokKind is a lexical token's kind.
type tokKind int

const (
	tEOF tokKind = iota
	tLBrace
	tRBrace
	tLParen
	tRParen
	tComma
	tPipe
	tOp     // an operator: its text is in tok.text
	tString // a quoted string: its value in tok.text
	tInt
	tFloat
	tDuration
	tIdent     // a bare word: keyword, intrinsic, function or enum
	tAttribute // .x, span.x, resource.x, ...: scope in tok.scope, name in tok.text
	tScoped    // span:name, trace:duration, ...: scope in tok.scope, name in tok.text
)

type token struct {
	kind  tokKind
	pos   int // byte offset in the query
	text  string
	scope string
	i     int64
	f     float64
}

// punctuation is the one-character tokens.
var punctuation = map[rune]tokKind{'{': tLBrace, '}': tRBrace, '(': tLParen, ')': tRParen, ',': tComma}

// operators, longest first: the lexer takes the longest that matches.
var operators = []string{
	"!>>", "!<<", "&>>", "&<<",
	"&&", "||", "!=", "=~", "!~", ">=", "<=", ">>", "<<", "!>", "!<", "&>", "&<", "&~",
	"=", ">", "<", "~", "!", "+", "-", "*", "/", "%", "^",
}

// attributeScopes are the scopes an attribute may name before its dot.
var attributeScopes = map[string]bool{"span": true, "resource": true, "event": true, "link": true, "instrumentation": true, "parent": true}

// intrinsicScopes are the scopes of scoped intrinsics (scope:name).
var intrinsicScopes = map[string]bool{"span": true, "trace": true, "event": true, "link": true, "instrumentation": true}

// isAttributeRune says whether r may appear in an unquoted attribute name:
// anything but white space and the runes that end an expression.
func isAttributeRune(r rune) bool {
	if unicode.IsSpace(r) {
		return false
	}
	switch r {
	case '{', '}', '(', ')', '=', '~', '!', '<', '>', '&', '|', '^', ',', '"', '`':
		return false
	}
	return true
}

// lex splits a query into tokens; an error names the offset.
func lex(q string) ([]token, error) {
	var toks []token
	for i := 0; i < len(q); {
		r, w := utf8.DecodeRuneInString(q[i:])
		switch {
		case unicode.IsSpace(r):
			i += w
			continue
		case punctuation[r] != 0:
			toks = append(toks, token{kind: punctuation[r], pos: i, text: string(r)})
			i++
			continue
		case r == '|' && !strings.HasPrefix(q[i:], "||"):
			toks = append(toks, token{kind: tPipe, pos: i, text: "|"})
			i++
			continue
		case r == '"' || r == '`':
			s, n, err := quoted(q, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tString, pos: i, text: s})
			i += n
			continue
		case r == '.' && i+1 < len(q) && (q[i+1] < '0' || q[i+1] > '9'):
			name, n, err := attributeName(q, i+1)
			if err != nil {
				return nil, err
			}
			toks = append(toks, token{kind: tAttribute, pos: i, text: name})
			i += 1 + n
			continue
		case r >= '0' && r <= '9' || r == '.':
			t, n, err := number(q, i)
			if err != nil {
				return nil, err
			}
			toks = append(toks, t)
			i += n
			continue
		case unicode.IsLetter(r) || r == '_':
			j := i
			for j < len(q) {
				r2, w2 := utf8.DecodeRuneInString(q[j:])
				if !unicode.IsLetter(r2) && !unicode.IsDigit(r2) && r2 != '_' {
					break
				}
				j += w2
			}
			word := q[i:j]
			if j < len(q) && q[j] == '.' && attributeScopes[word] {
				name, n, err := attributeName(q, j+1)
				if err != nil {
					return nil, err
				}
				toks = append(toks, token{kind: tAttribute, pos: i, scope: word, text: name})
				i = j + 1 + n
				continue
			}
			if j < len(q) && q[j] == ':' && intrinsicScopes[word] {
				k := j + 1
				for k < len(q) && (q[k] == '_' || unicode.IsLetter(rune(q[k])) || unicode.IsDigit(rune(q[k]))) {
					k++
				}
				if k == j+1 {
					return nil, &Error{Pos: j + 1, Msg: fmt.Sprintf("an intrinsic name after %q", word+":")}
				}
				toks = append(toks, token{kind: tScoped, pos: i, scope: word, text: q[j+1 : k]})
				i = k
				continue
			}
			toks = append(toks, token{kind: tIdent, pos: i, text: word})
			i = j
			continue
		}
		op := ""
		for _, o := range operators {
			if strings.HasPrefix(q[i:], o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, &Error{Pos: i, Msg: fmt.Sprintf("unexpected character %q", r)}
		}
		toks = append(toks, token{kind: tOp, pos: i, text: op})
		i += len(op)
	}
	return append(toks, token{kind: tEOF, pos: len(q)}), nil
}

// quoted reads a "..." string (escapes \" \\ \n \t \r and Go's others) or a
// `...` raw string at q[i], returning its value and length.
func quoted(q string, i int) (string, int, error) {
	if q[i] == '`' {
		end := strings.IndexByte(q[i+1:], '`')
		if end < 0 {
			return "", 0, &Error{Pos: i, Msg: "unterminated string"}
		}
		return q[i+1 : i+1+end], end + 2, nil
	}
	for j := i + 1; j < len(q); j++ {
		switch q[j] {
		case '\\':
			j++
		case '"':
			s, err := strconv.Unquote(q[i : j+1])
			if err != nil {
				return "", 0, &Error{Pos: i, Msg: "invalid escape in string " + q[i:j+1]}
			}
			return s, j + 1 - i, nil
		}
	}
	return "", 0, &Error{Pos: i, Msg: "unterminated string"}
}

// attributeName reads an attribute name at q[i]: unquoted runes and quoted
// segments ("a b"), together; it returns the name and its length.
func attributeName(q string, i int) (string, int, error) {
	var sb strings.Builder
	j := i
	for j < len(q) {
		if q[j] == '"' {
			s, n, err := quotedName(q, j)
			if err != nil {
				return "", 0, err
			}
			sb.WriteString(s)
			j += n
			continue
		}
		r, w := utf8.DecodeRuneInString(q[j:])
		if !isAttributeRune(r) {
			break
		}
		sb.WriteString(q[j : j+w]) // the bytes as written, valid UTF-8 or not
		j += w
	}
	if j == i {
		return "", 0, &Error{Pos: i, Msg: "an attribute name after the dot"}
	}
	return sb.String(), j - i, nil
}

// quotedName reads a quoted part of an attribute name at q[i]: every
// character as it is, but \" and \\ (the two escapes Tempo reads in
// names); it returns the text and its length.
func quotedName(q string, i int) (string, int, error) {
	var sb strings.Builder
	for j := i + 1; j < len(q); j++ {
		switch {
		case q[j] == '\\' && j+1 < len(q) && (q[j+1] == '"' || q[j+1] == '\\'):
			j++
			sb.WriteByte(q[j])
		case q[j] == '"':
			return sb.String(), j + 1 - i, nil
		default:
			sb.WriteByte(q[j])
		}
	}
	return "", 0, &Error{Pos: i, Msg: "unterminated quoted attribute name"}
}

// quoteName is the inverse of quotedName.
func quoteName(name string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(name) + `"`
}

// number reads an integer, a float or a duration (1s, 250ms, 1h30m) at q[i].
func number(q string, i int) (token, int, error) {
	j := i
	for j < len(q) && (q[j] >= '0' && q[j] <= '9' || q[j] == '.' || q[j] == '_' || q[j] == 'e' && j+1 < len(q) && (q[j+1] == '-' || q[j+1] == '+' || q[j+1] >= '0' && q[j+1] <= '9') || (q[j] == '-' || q[j] == '+') && j > i && q[j-1] == 'e') {
		j++
	}
	k := j
	for k < len(q) {
		r, w := utf8.DecodeRuneInString(q[k:])
		if !unicode.IsLetter(r) && (r < '0' || r > '9') && r != '.' {
			break
		}
		k += w
	}
	text := q[i:k]
	if k > j { // a unit follows: a duration
		d, err := time.ParseDuration(text)
		if err != nil {
			return token{}, 0, &Error{Pos: i, Msg: fmt.Sprintf("invalid duration %q (want e.g. 250ms, 1s, 1h30m)", text)}
		}
		return token{kind: tDuration, pos: i, text: text, i: int64(d)}, k - i, nil
	}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		return token{kind: tInt, pos: i, text: text, i: n}, k - i, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return token{}, 0, &Error{Pos: i, Msg: fmt.Sprintf("invalid number %q", text)}
	}
	return token{kind: tFloat, pos: i, text: text, f: f}, k - i, nil
}
