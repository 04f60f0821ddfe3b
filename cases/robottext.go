package cases

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Chinese names of events, violation types, severities and states, as crews
// read them in their chat groups.
var (
	eventNames = map[string]string{
		"dispatched":  "新派遣",
		"transferred": "转派",
		"reworked":    "返工",
		"reopened":    "重新派遣",
		"overdue":     "超时督办",
	}
	typeNames = map[string]string{
		"illegal_dumping":       "违规倾倒",
		"wrong_site":            "违规消纳（非指定场所卸载）",
		"spillage":              "抛洒滴漏",
		"overload":              "车辆超载",
		"missed_route":          "线路漏作业",
		"sweeping_quality":      "清扫质量不达标",
		"mixed_collection":      "混装混运",
		"bin_overflow":          "垃圾桶满溢",
		"bin_fire":              "垃圾桶起火",
		"bin_damaged":           "垃圾桶损坏",
		"sorting_contamination": "分类投放不准确",
		"toilet_odour":          "公厕异味超标",
		"toilet_consumables":    "公厕耗材不足",
		"toilet_safety":         "公厕安全报警",
		"toilet_leak":           "公厕漏水",
		"toilet_cold":           "公厕温度过低",
		"device_offline":        "设备离线",
		"low_battery":           "设备电量低",
	}
	severityNames = map[string]string{"minor": "一般", "major": "较重", "critical": "严重"}
	stateNames    = map[string]string{
		string(Reported): "待立案", string(Filed): "已立案", string(Dispatched): "已派遣", string(Accepted): "已受理", string(Handled): "已处理",
		string(Closed): "已结案", string(Rejected): "不予立案", string(Transferred): "已移送", string(Deferred): "缓办",
	}
)

func zh(m map[string]string, k string) string {
	if v, ok := m[k]; ok {
		return v
	}
	return k
}

// robotTextLimit keeps a message under WeCom's 2,048-byte limit for text
// messages (DingTalk and Feishu allow more).
const robotTextLimit = 2000

// robotText renders a notification as the Chinese text a crew reads in
// its group: what happened, where, how urgent, by when.
func robotText(n Notification, unitName string, loc *time.Location) string {
	c := n.Case
	var b strings.Builder
	fmt.Fprintf(&b, "【环卫案件·%s】案件 #%d %s（%s）\n", zh(eventNames, n.Event), c.ID, zh(typeNames, c.Type), zh(severityNames, c.Severity))
	unit := n.Unit
	if unitName != "" {
		unit = unitName + "（" + n.Unit + "）"
	}
	fmt.Fprintf(&b, "责任单位：%s\n", unit)
	if n.Responsible != "" {
		fmt.Fprintf(&b, "超时单位：%s\n", n.Responsible)
	}
	fmt.Fprintf(&b, "状态：%s\n", zh(stateNames, string(c.State)))
	line := func(label, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s：%s\n", label, v)
		}
	}
	line("区域", c.District)
	line("地点", strings.TrimSpace(c.Place+" "+c.Site))
	line("设备", c.Device)
	if c.Lat != 0 || c.Lon != 0 {
		fmt.Fprintf(&b, "位置：%.6f, %.6f\n", c.Lat, c.Lon)
	}
	line("摘要", c.Summary)
	if c.Count > 1 {
		fmt.Fprintf(&b, "重复发生：%d 次\n", c.Count)
	}
	at := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04") }
	if !c.AcceptDue.IsZero() {
		line("受理时限", at(c.AcceptDue))
	}
	if !c.CloseDue.IsZero() {
		line("办结时限", at(c.CloseDue))
	}
	if c.Overdue {
		b.WriteString("⚠ 已超时\n")
	}
	line("备注", n.Note)
	fmt.Fprintf(&b, "时间：%s　通知编号：%d", at(n.At), n.Delivery)
	return truncateUTF8(b.String(), robotTextLimit)
}

// truncateUTF8 cuts s to at most max bytes on a rune boundary.
func truncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
