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
	if len(a.Steps) == 0 {
		return ""
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
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`, w, h, w, h)
	b.WriteString(`<defs>`)
	for _, r := range relOrder {
		fmt.Fprintf(&b, `<marker id="arrow-%s" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>`, r, relColor[r])
	}
	b.WriteString(`</defs>`)
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
		bx, by := mx-dy/l*30, my+dx/l*30
		fmt.Fprintf(&b, `<path d="M%.0f,%.0f Q%.0f,%.0f %.0f,%.0f" fill="none" stroke="%s" stroke-width="2" marker-end="url(#arrow-%s)"><title>%s</title></path>`,
			x1, y1, bx, by, x2, y2, relColor[s.Rel], s.Rel, html.EscapeString(s.Why))
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
	b.WriteString(`</svg>`)
	return b.String()
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
	var parts []string
	w, h := 0, 0
	for _, a := range as {
		if len(parts) == limit {
			break
		}
		svg := a.SVG(txns)
		if svg == "" {
			continue
		}
		var sw, sh int
		fmt.Sscanf(svg, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d"`, &sw, &sh)
		parts = append(parts, strings.Replace(svg, "<svg ", fmt.Sprintf(`<svg y="%d" `, h), 1))
		w, h = max(w, sw), h+sh+10
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d">`, w, h) + strings.Join(parts, "") + "</svg>\n"
}
