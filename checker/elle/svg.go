package elle

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// relColor is each kind of edge's colour in a drawing.
var relColor = map[Rel]string{WW: "#c0392b", WR: "#2471a3", RW: "#d68910", Process: "#7d3c98", Realtime: "#566573"}

// statusColor is each outcome's colour, as Elle draws them.
var statusColor = map[Status]string{OK: "#d6eaf8", Info: "#fdebd0", Fail: "#fadbd8"}

// SVG draws a cycle: its transactions around a circle, each with its
// mops, and the edges between them labelled with their kind and key. It
// is plain SVG text, small enough to embed in a report.
func (a Anomaly) SVG(txns []Txn) string {
	body, w, h := a.svgBody(txns)
	if body == "" {
		return ""
	}
	return svgOpen(w, h) + body + "</svg>"
}

func svgOpen(w, h int) string {
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
}

// svgBody is the drawing of a cycle without its svg element, and its size.
func (a Anomaly) svgBody(txns []Txn) (string, int, int) {
	if len(a.Steps) == 0 {
		return "", 0, 0
	}
	n := len(a.Txns)
	const boxW, boxH = 210, 44
	radius := 70.0 + 45*float64(n)
	if n == 2 {
		radius = 110
	}
	w := int(2*radius) + boxW + 40
	h := int(2*radius) + boxH + 60
	cx, cy := float64(w)/2, float64(h)/2+10
	pos := make([][2]float64, n)
	for i := range pos {
		ang := -math.Pi/2 + 2*math.Pi*float64(i)/float64(n)
		pos[i] = [2]float64{cx + radius*math.Cos(ang), cy + radius*math.Sin(ang)}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<text x="8" y="16" font-size="13" font-weight="bold">%s</text>`, html.EscapeString(a.Type))
	for i, s := range a.Steps {
		p, q := pos[i], pos[(i+1)%n]
		// Shorten the line to the boxes' edges so the arrow shows.
		x1, y1 := clip(p, q, boxW, boxH)
		x2, y2 := clip(q, p, boxW, boxH)
		// Bend each edge a little, so that two opposite edges of a
		// two-transaction cycle do not overlap.
		mx, my := (x1+x2)/2, (y1+y2)/2
		dx, dy := x2-x1, y2-y1
		l := math.Hypot(dx, dy)
		if l == 0 {
			l = 1
		}
		bend := 30.0
		if n == 2 {
			bend = 80 // the two edges go opposite ways between the same boxes
		}
		bx, by := mx-dy/l*bend, my+dx/l*bend
		fmt.Fprintf(&b, `<path d="M%.0f,%.0f Q%.0f,%.0f %.0f,%.0f" fill="none" stroke="%s" stroke-width="2"><title>%s</title></path>`,
			x1, y1, bx, by, x2, y2, relColor[s.Rel], html.EscapeString(s.Why))
		// The arrowhead, drawn rather than a marker: a marker needs url(),
		// which a self-contained report does not allow.
		ux, uy := x2-bx, y2-by
		ul := math.Hypot(ux, uy)
		if ul == 0 {
			ul = 1
		}
		ux, uy = ux/ul, uy/ul
		fmt.Fprintf(&b, `<polygon points="%.0f,%.0f %.0f,%.0f %.0f,%.0f" fill="%s"/>`,
			x2, y2, x2-10*ux-5*uy, y2-10*uy+5*ux, x2-10*ux+5*uy, y2-10*uy-5*ux, relColor[s.Rel])
		label := s.Rel.String()
		if s.Key != "" {
			label += " " + s.Key
		}
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle" fill="%s" font-weight="bold" stroke="#fff" stroke-width="3" paint-order="stroke">%s</text>`,
			(mx+bx)/2, (my+by)/2, relColor[s.Rel], html.EscapeString(label))
	}
	for i, ti := range a.Txns {
		t := txns[ti]
		x, y := pos[i][0]-boxW/2, pos[i][1]-boxH/2
		fmt.Fprintf(&b, `<g><title>%s</title><rect x="%.0f" y="%.0f" width="%d" height="%d" rx="6" fill="%s" stroke="#333"/>`,
			html.EscapeString(Describe(t)), x, y, boxW, boxH, statusColor[t.Status])
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold">T%d · process %d · %s</text>`, x+6, y+15, t.ID, t.Process, t.Status)
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text></g>`, x+6, y+32, html.EscapeString(shorten(Mops(t), 34)))
	}
	return b.String(), w, h
}

// clip is where the line from the centre of box p towards q leaves the
// box.
func clip(p, q [2]float64, w, h float64) (float64, float64) {
	dx, dy := q[0]-p[0], q[1]-p[1]
	if dx == 0 && dy == 0 {
		return p[0], p[1]
	}
	s := math.Inf(1)
	if dx != 0 {
		s = math.Min(s, (w/2+4)/math.Abs(dx))
	}
	if dy != 0 {
		s = math.Min(s, (h/2+4)/math.Abs(dy))
	}
	return p[0] + dx*s, p[1] + dy*s
}

func shorten(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// Drawing stacks the drawings of the anomalies that are cycles (at most
// limit of them) into one SVG document; "" when none is a cycle.
func Drawing(as []Anomaly, txns []Txn, limit int) string {
	var b strings.Builder
	w, h, n := 0, 0, 0
	for _, a := range as {
		if n == limit {
			break
		}
		body, bw, bh := a.svgBody(txns)
		if body == "" {
			continue
		}
		fmt.Fprintf(&b, `<g transform="translate(0,%d)">%s</g>`, h, body)
		w, h, n = max(w, bw), h+bh+10, n+1
	}
	if n == 0 {
		return ""
	}
	return svgOpen(w, h) + b.String() + "</svg>\n"
}
